//! What every dashboard list shares: sorting by a clickable column header, paging with
//! counts, filters kept in the URL (so a link to a view can be shared), and a CSV export of
//! the current view. A list reads its `ListState` from the query string, sorts and pages its
//! rows with it, and the template writes headers, pager and export link from it.

use ringfence_engine::charts::esc;
use ringfence_model::ValueError;

/// The query keys a list owns; everything else in the query string is a filter.
const OWN_KEYS: [&str; 6] = ["sort", "dir", "page", "format", "error", "notice"];
pub const PER_PAGE: i64 = 50;

pub struct ListState {
    path: String,
    /// The filters of the current view, as sent (empty values dropped).
    filters: Vec<(String, String)>,
    pub sort: String,
    pub desc: bool,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    /// Whether the CSV export of the view was asked for.
    pub csv: bool,
}

/// A value a column sorts by.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
pub enum Key {
    Num(f64),
    Text(String),
}

impl From<i64> for Key {
    fn from(v: i64) -> Key {
        Key::Num(v as f64)
    }
}

impl From<f64> for Key {
    fn from(v: f64) -> Key {
        Key::Num(v)
    }
}

impl From<&str> for Key {
    fn from(v: &str) -> Key {
        Key::Text(v.to_lowercase())
    }
}

impl From<String> for Key {
    fn from(v: String) -> Key {
        Key::Text(v.to_lowercase())
    }
}

impl From<Option<jiff::Timestamp>> for Key {
    fn from(v: Option<jiff::Timestamp>) -> Key {
        Key::Num(v.map_or(f64::MIN, |t| t.as_second() as f64))
    }
}

impl From<jiff::Timestamp> for Key {
    fn from(v: jiff::Timestamp) -> Key {
        Key::Num(v.as_second() as f64)
    }
}

impl ListState {
    /// Reads sort, direction and page from `query`. A page that is not a number, a direction
    /// other than asc or desc, or a column the list does not sort by is refused with a
    /// message naming it (a hand-edited link gets an answer, not a silent default).
    pub fn read(
        path: &str,
        query: &str,
        columns: &[&str],
        default_sort: &str,
        default_desc: bool,
    ) -> Result<ListState, ValueError> {
        let mut sort = default_sort.to_owned();
        let mut dir: Option<bool> = None;
        let mut page = 1;
        let mut csv = false;
        let mut filters = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "sort" if columns.contains(&v.as_ref()) => sort = v.into_owned(),
                "sort" => {
                    return Err(ValueError::new(
                        "sort",
                        format!(
                            "this list sorts by {}, not '{}'",
                            columns.join(", "),
                            v.chars().take(40).collect::<String>()
                        ),
                    ));
                }
                "dir" => match v.as_ref() {
                    "asc" => dir = Some(false),
                    "desc" => dir = Some(true),
                    _ => return Err(ValueError::new("dir", "give asc or desc")),
                },
                "page" => match v.parse::<i64>() {
                    Ok(p) if (1..=1_000_000).contains(&p) => page = p,
                    _ => return Err(ValueError::new("page", "give a page number from 1")),
                },
                "format" => csv = v == "csv",
                k if OWN_KEYS.contains(&k) => {}
                _ if v.trim().is_empty() => {}
                _ => filters.push((k.into_owned(), v.into_owned())),
            }
        }
        let desc = dir.unwrap_or(if sort == default_sort { default_desc } else { false });
        Ok(ListState { path: path.to_owned(), filters, sort, desc, page, per_page: PER_PAGE, total: 0, csv })
    }

    /// A filter's value in the current view, or "".
    pub fn filter(&self, key: &str) -> &str {
        self.filters.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }

    fn url(&self, sort: &str, desc: bool, page: i64, csv: bool) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.filters {
            ser.append_pair(k, v);
        }
        ser.append_pair("sort", sort);
        ser.append_pair("dir", if desc { "desc" } else { "asc" });
        if page > 1 {
            ser.append_pair("page", &page.to_string());
        }
        if csv {
            ser.append_pair("format", "csv");
        }
        format!("{}?{}", self.path, ser.finish())
    }

    /// A sortable column header: a link that sorts by `key` (or turns the order round when
    /// already sorted by it), with `aria-sort` on the current one.
    pub fn th(&self, label: &str, key: &str) -> String {
        let current = self.sort == key;
        let desc = if current { !self.desc } else { false };
        let (aria, mark) = match (current, self.desc) {
            (false, _) => ("", ""),
            (true, false) => (" aria-sort=\"ascending\"", " ▲"),
            (true, true) => (" aria-sort=\"descending\"", " ▼"),
        };
        format!(
            "<th{aria}><a class=\"sort\" href=\"{}\">{}{mark}</a></th>",
            esc(&self.url(key, desc, 1, false)),
            esc(label)
        )
    }

    /// The same view as CSV.
    pub fn csv_link(&self) -> String {
        self.url(&self.sort, self.desc, 1, true)
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }

    /// "1–50 of 405" and the previous and next links.
    pub fn pager(&self) -> String {
        let first = if self.total == 0 { 0 } else { self.offset() + 1 };
        let last = (self.offset() + self.per_page).min(self.total);
        let mut out = format!(
            "<nav class=\"pager\" aria-label=\"pages\"><span>{first}–{last} of {}</span>",
            self.total
        );
        if self.page > 1 {
            out.push_str(&format!(
                " <a rel=\"prev\" href=\"{}\">‹ Previous</a>",
                esc(&self.url(&self.sort, self.desc, self.page - 1, false))
            ));
        }
        if last < self.total {
            out.push_str(&format!(
                " <a rel=\"next\" href=\"{}\">Next ›</a>",
                esc(&self.url(&self.sort, self.desc, self.page + 1, false))
            ));
        }
        out.push_str(&format!(
            " <a class=\"export\" href=\"{}\">Export CSV</a></nav>",
            esc(&self.csv_link())
        ));
        out
    }

    /// Sorts `rows` by the current column (`key` gives a row's value for a column), keeps the
    /// total, and returns the current page.
    pub fn page_of<T>(&mut self, mut rows: Vec<T>, key: impl Fn(&T, &str) -> Key) -> Vec<T> {
        let sort = self.sort.clone();
        rows.sort_by(|a, b| {
            let o = key(a, &sort).partial_cmp(&key(b, &sort)).unwrap_or(std::cmp::Ordering::Equal);
            if self.desc { o.reverse() } else { o }
        });
        self.total = rows.len() as i64;
        if self.csv {
            return rows;
        }
        let offset = usize::try_from(self.offset()).unwrap_or(usize::MAX);
        rows.into_iter().skip(offset).take(self.per_page as usize).collect()
    }
}

/// A CSV download of a list's current view.
pub fn csv_response(
    name: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut out = String::new();
    ringfence_evidence::csv::push_line(&mut out, header);
    for r in rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        ringfence_evidence::csv::push_line(&mut out, &cells);
    }
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
        ],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_direction_page_and_filters_round_trip_through_links() {
        let l = ListState::read(
            "/deployments",
            "status=failed&sort=device&dir=desc&page=3&organization_id=&bogus=x",
            &["device", "status"],
            "created",
            true,
        )
        .unwrap();
        assert_eq!((l.sort.as_str(), l.desc, l.page), ("device", true, 3));
        assert_eq!(l.filter("status"), "failed");
        assert_eq!(l.filter("organization_id"), "", "empty filters are dropped");
        // Clicking the current column turns the order round and goes back to page 1.
        let th = l.th("Device", "device");
        assert!(th.contains("aria-sort=\"descending\""), "{th}");
        assert!(th.contains("sort=device&amp;dir=asc"), "{th}");
        assert!(!th.contains("page="), "{th}");
        assert!(l.csv_link().ends_with("format=csv"), "{}", l.csv_link());
        assert!(l.csv_link().contains("status=failed"), "{}", l.csv_link());
    }

    #[test]
    fn bad_sorting_and_paging_are_refused_with_the_field_named() {
        for (query, field) in
            [("sort=password_hash", "sort"), ("page=abc", "page"), ("page=0", "page"), ("dir=up", "dir")]
        {
            let e = ListState::read("/x", query, &["name"], "name", false)
                .err()
                .unwrap_or_else(|| panic!("{query}"));
            assert_eq!(e.field, field, "{query}");
        }
        let l = ListState::read("/x", "", &["name"], "name", false).unwrap();
        assert_eq!((l.sort.as_str(), l.desc, l.page), ("name", false, 1));
    }

    #[test]
    fn pages_hold_the_sorted_rows_and_the_total() {
        let mut l = ListState::read("/x", "sort=n&dir=desc&page=2", &["n"], "n", false).unwrap();
        l.per_page = 2;
        let page = l.page_of((1..=5).collect::<Vec<i64>>(), |v, _| Key::from(*v));
        assert_eq!(page, vec![3, 2]);
        assert_eq!(l.total, 5);
        assert!(l.pager().contains("3–4 of 5"), "{}", l.pager());
    }
}
