//! `llama-dialogue check`: the exit status and the JSON report a writer's CI gates on.

use crate::common;

#[test]
fn check_cli_exit_status_and_json() {
    let ok = common::output(crate::cli_command().args(["check", "stories/"]));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        out.contains("checked 3 stories, 5 personas and 1 safety file"),
        "{out}"
    );

    let bad = common::output(crate::cli_command().args([
        "check",
        "--json",
        "tests/fixtures/bad/07_unknown_target.story.ron",
    ]));
    assert_eq!(bad.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(v["errors"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(d["location"]["line"], 8);
    assert_eq!(d["location"]["col"], 58);
    assert_eq!(d["help"], "did you mean `b`?");
}
