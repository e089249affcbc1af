//! The chapters as text: no control characters (a `\f` or `\a` typed through an escaping
//! layer turns `\frac` and `\alpha` into a form feed and "rac", a bell and "lpha", which the
//! math parser accepts without a word).

#[test]
fn no_chapter_contains_control_characters() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let bad: Vec<u32> = line
                    .chars()
                    .filter(|c| c.is_control() && *c != '\t')
                    .map(|c| c as u32)
                    .collect();
                assert!(
                    bad.is_empty(),
                    "{}:{}: control characters {bad:?}",
                    path.display(),
                    n + 1
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "read the chapters: {checked}");
}
