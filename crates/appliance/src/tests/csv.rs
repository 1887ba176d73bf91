use crate::{CsvError, MAX_CSV_ROWS, ManualAppliance, parse_csv};

fn errors(text: &str) -> Vec<(usize, String)> {
    parse_csv(text)
        .expect_err("the file is refused")
        .0
        .into_iter()
        .map(|CsvError { line, message }| (line, message))
        .collect()
}

/// Every error of `text`, as (line, a phrase its message contains).
#[track_caller]
fn check_errors(text: &str, expect: &[(usize, &str)]) {
    let got = errors(text);
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for ((line, message), (want_line, phrase)) in got.iter().zip(expect) {
        assert_eq!(line, want_line, "{message}");
        assert!(message.contains(phrase), "{message:?} should say {phrase:?}");
    }
}

#[test]
fn a_good_file_in_any_column_order_with_quotes() {
    let text = "\u{feff}Site,NAME,vendor,Model,firmware,notes,serial\r\n\
        HQ, fw-hq ,Fortinet,FortiGate 100F,7.0.11,\"rack 2, top\nsecond line\",FG100FTK22000001\r\n\
        \r\n\
        Branch,\"pa \"\"edge\"\"\",Palo Alto Networks,PA-3220,10.2.9-h1,,\n";
    let got = parse_csv(text).unwrap();
    assert_eq!(
        got,
        vec![
            ManualAppliance {
                name: "fw-hq".into(),
                vendor: "Fortinet".into(),
                model: "FortiGate 100F".into(),
                firmware: "7.0.11".into(),
                site: "HQ".into(),
                address: None,
                serial: Some("FG100FTK22000001".into()),
                notes: Some("rack 2, top\nsecond line".into()),
                line: 2,
            },
            ManualAppliance {
                name: "pa \"edge\"".into(),
                vendor: "Palo Alto Networks".into(),
                model: "PA-3220".into(),
                firmware: "10.2.9-h1".into(),
                site: "Branch".into(),
                address: None,
                serial: None,
                notes: None,
                line: 5,
            },
        ]
    );
    assert_eq!(parse_csv("name,vendor,model,firmware,site,address\n").unwrap(), vec![]);
}

#[test]
fn header_problems() {
    check_errors("", &[(1, "no header row")]);
    check_errors(
        "name,vendor,model,site\nfw,Fortinet,100F,HQ\n",
        &[(1, "required column 'firmware' is missing")],
    );
    check_errors(
        "name,vendor,model,firmware,site,adress,name\n",
        &[(1, "unknown column 'adress'"), (1, "'name' appears twice")],
    );
}

#[test]
fn every_bad_row_is_reported_with_its_line() {
    let long = "x".repeat(201);
    let text = format!(
        "name,vendor,model,firmware,site,notes\n\
         fw1,Fortinet,100F,7.0.11,HQ,\n\
         fw2,,100F,7.0.11,HQ,\n\
         {long},Fortinet,100F,7.0.11,HQ,\n\
         fw3,Fortinet,100F\u{7},7.0.11,HQ,\n\
         FW1,Fortinet,100F,7.0.11,HQ,\n\
         fw4,Fortinet,100F,7.0.11\n\
         fw5,Fortinet,100F,7.0.11,HQ,\"tab\there is fine\"\n\
         fw6,Fort\"inet,100F,7.0.11,HQ,\n\
         fw7,\"Fortinet\"x,100F,7.0.11,HQ,\n"
    );
    check_errors(
        &text,
        &[
            (3, "vendor is empty"),
            (4, "name is longer than 200"),
            (5, "model contains a control character"),
            (6, "already used on line 2"),
            (7, "the row has 4 fields but the header has 6"),
            (9, "has a '\"' inside it"),
            (10, "text follows a closing quote"),
        ],
    );
}

#[test]
fn an_unterminated_quote_is_reported_where_it_starts() {
    check_errors(
        "name,vendor,model,firmware,site\nfw1,\"Fortinet,100F,7.0.11,HQ\nfw2,a,b,c,d\n",
        &[(2, "never closed")],
    );
}

#[test]
fn size_and_row_limits() {
    let big = format!("name,vendor,model,firmware,site,notes\n{}", "a".repeat(2 * 1024 * 1024));
    check_errors(&big, &[(0, "at most 2097152 bytes")]);
    let mut many = String::from("name,vendor,model,firmware,site\n");
    for i in 0..=MAX_CSV_ROWS {
        many.push_str(&format!("fw{i},Fortinet,100F,7.0.11,HQ\n"));
    }
    check_errors(&many, &[(0, "at most 5000")]);
    many.truncate(many.trim_end().rfind('\n').unwrap() + 1);
    assert_eq!(parse_csv(&many).unwrap().len(), MAX_CSV_ROWS);
}

#[test]
fn errors_print_with_line_numbers() {
    let e = parse_csv("name,vendor,model,firmware,site\nfw,,m,1,s\n").unwrap_err();
    assert_eq!(e.to_string(), "line 2: vendor is empty: fill it in");
}
