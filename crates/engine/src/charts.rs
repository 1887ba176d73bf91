//! SVG charts drawn on the server: the compliance trend (a line) and mean time to remediate
//! (bars). Plain SVG text with every label escaped, so a page, a report and its PDF show the
//! same picture without any script.

use std::fmt::Write;

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const W: f64 = 560.0;
const H: f64 = 200.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 30.0;

/// A line of percentages (0–100) over labelled points.
pub fn line_percent(title: &str, points: &[(String, f64)]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}"><title>{}</title>"#,
        esc(title)
    );
    // Room on the right for half of the last label, which is centred on its point.
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    for pct in [0.0, 50.0, 100.0] {
        let y = TOP + plot_h * (1.0 - pct / 100.0);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{pct:.0}%</text>"##,
            W - RIGHT,
            LEFT - 4.0,
            y + 3.0
        );
    }
    let n = points.len();
    let x_of =
        |i: usize| if n <= 1 { LEFT + plot_w / 2.0 } else { LEFT + plot_w * i as f64 / (n - 1) as f64 };
    let y_of = |v: f64| TOP + plot_h * (1.0 - v.clamp(0.0, 100.0) / 100.0);
    let path: Vec<String> =
        points.iter().enumerate().map(|(i, (_, v))| format!("{:.1},{:.1}", x_of(i), y_of(*v))).collect();
    if !path.is_empty() {
        let _ = write!(
            s,
            r##"<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{}"/>"##,
            path.join(" ")
        );
    }
    let label_every = n.div_ceil(6).max(1);
    for (i, (label, v)) in points.iter().enumerate() {
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f6feb"><title>{}: {v:.1}%</title></circle>"##,
            x_of(i),
            y_of(*v),
            esc(label)
        );
        if i % label_every == 0 || i + 1 == n {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
                x_of(i),
                H - 10.0,
                esc(label)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Bars of values (e.g. days), each with a label; `None` draws no bar and says "none".
pub fn bars(title: &str, unit: &str, bars: &[(String, Option<f64>)]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}"><title>{}</title>"#,
        esc(title)
    );
    let max = bars.iter().filter_map(|(_, v)| *v).fold(0.0_f64, f64::max).max(1.0);
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / bars.len().max(1) as f64;
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999"/>"##,
        TOP + plot_h,
        W - 10.0,
        TOP + plot_h
    );
    for (i, (label, v)) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.2;
        let cx = LEFT + slot * i as f64 + slot / 2.0;
        match v {
            Some(v) => {
                let h = plot_h * (v / max);
                let _ = write!(
                    s,
                    r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#2da44e"><title>{}: {v:.1} {}</title></rect><text x="{cx:.1}" y="{:.1}" font-size="10" text-anchor="middle">{v:.1} {}</text>"##,
                    TOP + plot_h - h,
                    slot * 0.6,
                    esc(label),
                    esc(unit),
                    (TOP + plot_h - h - 3.0).max(TOP + 8.0),
                    esc(unit)
                );
            }
            None => {
                let _ = write!(
                    s,
                    r#"<text x="{cx:.1}" y="{:.1}" font-size="10" text-anchor="middle">none</text>"#,
                    TOP + plot_h - 4.0
                );
            }
        }
        let _ = write!(
            s,
            r#"<text x="{cx:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            H - 10.0,
            esc(label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_points_placed() {
        let svg = line_percent("a <b>", &[("w1".into(), 0.0), ("w2".into(), 100.0)]);
        assert!(svg.contains("<title>a &lt;b&gt;</title>"));
        // 0% sits on the bottom of the plot, 100% on its top; the last point leaves room for its label.
        assert!(svg.contains(&format!("points=\"{LEFT:.1},{:.1} {:.1},{TOP:.1}\"", H - BOTTOM, W - RIGHT)));
        let svg = bars("mttr", "days", &[("critical".into(), Some(4.0)), ("low".into(), None)]);
        assert!(svg.contains("critical: 4.0 days"));
        assert!(svg.contains(">none</text>"));
    }
}
