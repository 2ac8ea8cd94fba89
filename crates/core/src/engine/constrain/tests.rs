use super::located;

#[test]
fn llguidance_places_become_line_and_column() {
    assert_eq!(
        located("at 3(7): unknown name: foo\n   3 | start: foo"),
        (
            Some(3),
            Some(7),
            "unknown name: foo\n   3 | start: foo".to_owned()
        )
    );
    assert_eq!(
        located("2(1): expecting ':' (at x (KW))"),
        (Some(2), Some(1), "expecting ':' (at x (KW))".to_owned())
    );
    assert_eq!(located("no place"), (None, None, "no place".to_owned()));
}
