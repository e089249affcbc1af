//! The mutation score in the verification chapter: `{{#mutation-score}}` becomes a table drawn
//! from the committed run log `book/runs/mutants.tsv`, which `book/runs/mutants.sh` writes, and
//! the list of mutants no test caught, `book/runs/mutants-missed.txt`, each with the reason it
//! cannot change behaviour where `book/runs/mutants-equivalent.txt` gives one. The groups
//! themselves are read from the script, so a group it defines that the log does not hold yet
//! is named as not run. The chapter cannot claim a score the log does not hold.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mdbook_preprocessor::book::Book;
use mdbook_preprocessor::errors::Result as BookResult;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use super::preprocess::{expand_chapters, html_escape};

/// The directive [`MutationScore`] replaces.
pub const DIRECTIVE: &str = "{{#mutation-score}}";

/// The run log, relative to the repository root.
pub const LOG: &str = "book/runs/mutants.tsv";

/// The mutants that survived the whole suite, relative to the repository root.
pub const MISSED: &str = "book/runs/mutants-missed.txt";

/// Why a surviving mutant is equivalent to the code (a line per mutant: the line of
/// [`MISSED`], a tab, the reason), relative to the repository root.
pub const EQUIVALENT: &str = "book/runs/mutants-equivalent.txt";

/// The script that runs the groups and defines them, relative to the repository root.
pub const SCRIPT: &str = "book/runs/mutants.sh";

/// A group as the script defines it: its name and the files it mutates.
#[derive(Clone, Debug, PartialEq)]
pub struct Defined {
    pub name: String,
    pub files: Vec<String>,
}

/// Reads the groups out of the script's `groups=(` array, one `"name|files|tests|math"` line
/// each.
pub fn parse_script(text: &str) -> Result<Vec<Defined>, String> {
    let mut lines = text.lines().enumerate();
    if !lines.any(|(_, l)| l.trim() == "groups=(") {
        return Err(format!("{SCRIPT}: no `groups=(` array"));
    }
    let mut defined = Vec::new();
    for (i, line) in lines {
        let line = line.trim();
        if line == ")" {
            return Ok(defined);
        }
        let Some(inner) = line.strip_prefix('"').and_then(|l| l.strip_suffix('"')) else {
            continue; // a comment or a blank line
        };
        let f: Vec<&str> = inner.split('|').collect();
        if f.len() != 4 || f[0].is_empty() || f[1].trim().is_empty() {
            return Err(format!(
                "{SCRIPT}: line {} is not \"name|files|tests|math\": {line}",
                i + 1
            ));
        }
        defined.push(Defined {
            name: f[0].to_string(),
            files: f[1].split_whitespace().map(str::to_string).collect(),
        });
    }
    Err(format!("{SCRIPT}: the `groups=(` array is not closed"))
}

/// One line of the log: a group of modules and what became of its mutants.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub mutants: u32,
    pub caught: u32,
    pub missed: u32,
    pub unviable: u32,
    pub timeout: u32,
    pub commit: String,
    /// For the groups of the paper's math: the mutants the property and example tests missed
    /// on their own, before the golden fixtures (and the rest of the suite) were run.
    pub missed_without_golden: Option<u32>,
}

impl Group {
    /// Mutants that built, and so could be caught: caught, missed or timed out.
    pub fn viable(&self) -> u32 {
        self.caught + self.missed + self.timeout
    }
}

/// Reads the log's lines after the header. Errors name the line and the field.
pub fn parse(text: &str) -> Result<Vec<Group>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.split('\t').next() == Some("group") => {}
        _ => {
            return Err(format!(
                "{LOG}: line 1 should be the header, starting with `group`"
            ))
        }
    }
    let mut groups = Vec::new();
    for (i, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 8 {
            return Err(format!(
                "{LOG}: line {} has {} fields, not 8: {line:?}",
                i + 1,
                f.len()
            ));
        }
        let number = |k: usize, what: &str| {
            f[k].parse::<u32>()
                .map_err(|_| format!("{LOG}: line {}: {what} is {:?}, not a count", i + 1, f[k]))
        };
        let g = Group {
            name: f[0].to_string(),
            mutants: number(1, "mutants")?,
            caught: number(2, "caught")?,
            missed: number(3, "missed")?,
            unviable: number(4, "unviable")?,
            timeout: number(5, "timeout")?,
            commit: f[6].to_string(),
            missed_without_golden: match f[7] {
                "-" => None,
                _ => Some(number(7, "missed_without_golden")?),
            },
        };
        if g.viable() + g.unviable != g.mutants {
            return Err(format!(
                "{LOG}: line {}: caught + missed + unviable + timeout is {}, not the {} mutants",
                i + 1,
                g.viable() + g.unviable,
                g.mutants
            ));
        }
        if let Some(m) = g.missed_without_golden {
            if m < g.missed || m > g.viable() {
                return Err(format!(
                    "{LOG}: line {}: missed_without_golden is {m}, outside {}..={} (the missed \
                     and the viable mutants)",
                    i + 1,
                    g.missed,
                    g.viable()
                ));
            }
        }
        groups.push(g);
    }
    Ok(groups)
}

/// Reads [`EQUIVALENT`]: survivor -> reason. Lines starting with `#` and blank lines are skipped.
pub fn parse_equivalent(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut reasons = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('\t') {
            Some((mutant, reason)) if !mutant.trim().is_empty() && !reason.trim().is_empty() => {
                if reasons
                    .insert(mutant.trim().to_string(), reason.trim().to_string())
                    .is_some()
                {
                    return Err(format!("{EQUIVALENT}: line {}: {mutant:?} again", i + 1));
                }
            }
            _ => {
                return Err(format!(
                    "{EQUIVALENT}: line {} is not a mutant, a tab and a reason: {line:?}",
                    i + 1
                ))
            }
        }
    }
    Ok(reasons)
}

/// `caught` of `viable` as a percentage with one decimal.
fn percent(caught: u32, viable: u32) -> String {
    if viable == 0 {
        "–".to_string()
    } else {
        format!("{:.1} %", 100.0 * f64::from(caught) / f64::from(viable))
    }
}

/// The table (one row per group and a total) and the list of survivors with the reasons they
/// are equivalent, as markdown.
///
/// # Errors
/// A reason for a mutant that is not among the survivors, or a group in the log that the script
/// does not define (the files have drifted apart).
pub fn markdown(
    groups: &[Group],
    defined: &[Defined],
    missed: &str,
    equivalent: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut md = String::from(
        "| group | mutants | caught | missed | timed out | unviable | caught of viable | commit |\n\
         |---|--:|--:|--:|--:|--:|--:|---|\n",
    );
    let mut total = Group {
        name: "all".to_string(),
        mutants: 0,
        caught: 0,
        missed: 0,
        unviable: 0,
        timeout: 0,
        commit: String::new(),
        missed_without_golden: None,
    };
    let (mut math_viable, mut math_missed, mut math_suite_missed) = (0, 0, 0);
    for g in groups {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | `{}` |",
            html_escape(&g.name),
            g.mutants,
            g.caught,
            g.missed,
            g.timeout,
            g.unviable,
            percent(g.caught, g.viable()),
            html_escape(&g.commit)
        );
        total.mutants += g.mutants;
        total.caught += g.caught;
        total.missed += g.missed;
        total.unviable += g.unviable;
        total.timeout += g.timeout;
        if let Some(m) = g.missed_without_golden {
            math_viable += g.viable();
            math_missed += m;
            math_suite_missed += g.missed;
        }
    }
    let _ = writeln!(
        md,
        "| **all groups above** | {} | {} | {} | {} | {} | **{}** | |",
        total.mutants,
        total.caught,
        total.missed,
        total.timeout,
        total.unviable,
        percent(total.caught, total.viable())
    );
    if let Some(g) = groups
        .iter()
        .find(|g| !defined.iter().any(|d| d.name == g.name))
    {
        return Err(format!(
            "{LOG} has the group {:?}, which {SCRIPT} does not define",
            g.name
        ));
    }
    let not_run: Vec<String> = defined
        .iter()
        .filter(|d| !groups.iter().any(|g| g.name == d.name))
        .map(|d| {
            let files: Vec<String> = d.files.iter().map(|f| format!("`{f}`")).collect();
            format!("**{}** ({})", html_escape(&d.name), files.join(", "))
        })
        .collect();
    if !not_run.is_empty() {
        let _ = writeln!(
            md,
            "\nNot run through the script yet, so the table claims nothing for them: {}.",
            not_run.join("; ")
        );
    }
    if math_viable > 0 {
        let names: Vec<String> = groups
            .iter()
            .filter(|g| g.missed_without_golden.is_some())
            .map(|g| html_escape(&g.name))
            .collect();
        let _ = writeln!(
            md,
            "\nEvery test but the golden fixtures (the property, example and other tests; doc \
             tests not counted) caught **{} of the {} viable mutants** of the math groups \
             ({}; {}): what the invariants catch without any number from PyTorch. The golden \
             fixtures caught {} more; the whole suite left {} alive.",
            math_viable - math_missed,
            math_viable,
            names.join(", "),
            percent(math_viable - math_missed, math_viable),
            math_missed - math_suite_missed,
            math_suite_missed
        );
    }
    let survivors: Vec<&str> = missed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(stale) = equivalent.keys().find(|k| !survivors.contains(&k.as_str())) {
        return Err(format!(
            "{EQUIVALENT} explains {stale:?}, which is not in {MISSED}"
        ));
    }
    if survivors.is_empty() {
        md.push_str("\nNo mutant in these groups survived the whole suite.\n");
    } else {
        let explained = survivors
            .iter()
            .filter(|s| equivalent.contains_key(**s))
            .count();
        let _ = writeln!(
            md,
            "\nThe mutants that survived the whole suite ({} of them; {explained} shown to be \
             equivalent to the code, so that no test could catch them):\n",
            survivors.len()
        );
        for s in survivors {
            let code = s.replace('`', "'"); // a code span shows < and & as they are
            match equivalent.get(s) {
                Some(why) => {
                    let _ = writeln!(md, "- `{code}`: equivalent: {}", html_escape(why));
                }
                None => {
                    let _ = writeln!(md, "- `{code}`: **not explained yet**");
                }
            }
        }
    }
    Ok(md)
}

/// Expands [`DIRECTIVE`] from the files under `root`.
pub struct MutationScore {
    pub root: PathBuf,
}

fn render(root: &Path) -> Result<String, String> {
    let read = |name: &str| {
        std::fs::read_to_string(root.join(name)).map_err(|e| format!("cannot read {name}: {e}"))
    };
    let groups = parse(&read(LOG)?)?;
    let defined = parse_script(&read(SCRIPT)?)?;
    let missed = match std::fs::read_to_string(root.join(MISSED)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {MISSED}: {e}")),
    };
    let equivalent = match std::fs::read_to_string(root.join(EQUIVALENT)) {
        Ok(text) => parse_equivalent(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(format!("cannot read {EQUIVALENT}: {e}")),
    };
    markdown(&groups, &defined, &missed, &equivalent)
}

impl Preprocessor for MutationScore {
    fn name(&self) -> &str {
        "aiayn-mutation-score"
    }

    fn run(&self, _ctx: &PreprocessorContext, book: Book) -> BookResult<Book> {
        let table = render(&self.root);
        expand_chapters(book, DIRECTIVE, |content| {
            Ok(content.replace(DIRECTIVE, table.as_ref().map_err(Clone::clone)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script's groups a, b and c, all three in the logs of the tests below.
    fn abc() -> Vec<Defined> {
        ["a", "b", "c"]
            .iter()
            .map(|n| Defined {
                name: n.to_string(),
                files: vec![format!("src/{n}.rs")],
            })
            .collect()
    }

    const HEADER: &str =
        "group\tmutants\tcaught\tmissed\tunviable\ttimeout\tcommit\tmissed_without_golden\n";

    #[test]
    fn the_table_sums_the_groups_and_scores_caught_of_viable() {
        let log = format!(
            "{HEADER}a\t10\t6\t1\t2\t1\tabc1234\t3\nb\t5\t4\t0\t1\t0\tdef5678\t-\n\
             c\t7\t7\t0\t0\t0\tabc1234\t1\n"
        );
        let groups = parse(&log).unwrap();
        assert_eq!(groups[0].viable(), 8);
        let none = BTreeMap::new();
        let md = markdown(
            &groups,
            &abc(),
            "src/a.rs:1:1: replace f -> u32 with 0\n",
            &none,
        )
        .unwrap();
        assert!(
            md.contains("| a | 10 | 6 | 1 | 1 | 2 | 75.0 % | `abc1234` |"),
            "{md}"
        );
        assert!(
            md.contains("| b | 5 | 4 | 0 | 0 | 1 | 100.0 % | `def5678` |"),
            "{md}"
        );
        // 17 of 19 viable
        assert!(md.contains("| 22 | 17 | 1 | 1 | 3 | **89.5 %** |"), "{md}");
        // a and c are math groups: 8 + 7 viable, 3 + 1 missed without the golden fixtures,
        // 1 + 0 by the whole suite
        assert!(
            md.contains("caught **11 of the 15 viable mutants** of the math groups (a, c; 73.3 %)"),
            "{md}"
        );
        assert!(
            md.contains("The golden fixtures caught 3 more; the whole suite left 1 alive."),
            "{md}"
        );
        assert!(
            md.contains("- `src/a.rs:1:1: replace f -> u32 with 0`: **not explained yet**"),
            "{md}"
        );
        assert!(md.contains("(1 of them; 0 shown to be equivalent"), "{md}");
    }

    #[test]
    fn a_survivor_is_listed_with_the_reason_it_is_equivalent() {
        let groups = parse(&format!("{HEADER}a\t3\t1\t2\t0\t0\tabc\t-\n")).unwrap();
        let missed = "a: src/a.rs:1:1: replace < with <= in f\na: src/a.rs:2:1: delete ! in g\n";
        let reasons = parse_equivalent(
            "# mutant, tab, reason\n\na: src/a.rs:1:1: replace < with <= in f\tx is never 0 here\n",
        )
        .unwrap();
        let md = markdown(&groups, &abc(), missed, &reasons).unwrap();
        assert!(
            md.contains(
                "- `a: src/a.rs:1:1: replace < with <= in f`: equivalent: x is never 0 here"
            ),
            "{md}"
        );
        assert!(
            md.contains("- `a: src/a.rs:2:1: delete ! in g`: **not explained yet**"),
            "{md}"
        );
        assert!(md.contains("(2 of them; 1 shown to be equivalent"), "{md}");
        // a reason for a mutant that did not survive means the files have drifted apart
        let stale = parse_equivalent("a: src/a.rs:9:9: delete - in h\tno\n").unwrap();
        let e = markdown(&groups, &abc(), missed, &stale).unwrap_err();
        assert!(
            e.contains("\"a: src/a.rs:9:9: delete - in h\", which is not in"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_reasons_file_is_an_error_naming_the_line() {
        let e = parse_equivalent("# ok\nno tab here\n").unwrap_err();
        assert!(
            e.contains("line 2 is not a mutant, a tab and a reason"),
            "{e}"
        );
        let e = parse_equivalent("m\t \n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = parse_equivalent("m\tone\nm\ttwo\n").unwrap_err();
        assert!(e.contains("line 2: \"m\" again"), "{e}");
    }

    #[test]
    fn no_survivors_is_said_in_words() {
        let groups = parse(&format!("{HEADER}a\t3\t3\t0\t0\t0\tabc\t-\n")).unwrap();
        let md = markdown(&groups, &abc(), "\n", &BTreeMap::new()).unwrap();
        assert!(md.contains("No mutant in these groups survived"), "{md}");
        assert!(
            !md.contains("golden"),
            "no math group, no invariants line: {md}"
        );
    }

    #[test]
    fn the_groups_come_from_the_script_and_those_not_run_are_named() {
        let script =
            "x=1\ngroups=(\n    # group | files | tests | math?\n    \"a|src/a.rs|t|no\"\n\n    \
                      \"b|src/b/*.rs src/c.rs|t u|yes\"\n)\n\"z|src/z.rs|t|no\"\n";
        let defined = parse_script(script).unwrap();
        assert_eq!(defined.len(), 2, "{defined:?}");
        assert_eq!(defined[1].name, "b");
        assert_eq!(defined[1].files, ["src/b/*.rs", "src/c.rs"]);
        let groups = parse(&format!("{HEADER}a\t3\t3\t0\t0\t0\tabc\t-\n")).unwrap();
        let md = markdown(&groups, &defined, "", &BTreeMap::new()).unwrap();
        assert!(
            md.contains(
                "Not run through the script yet, so the table claims nothing for them: \
                         **b** (`src/b/*.rs`, `src/c.rs`)."
            ),
            "{md}"
        );
        let all = markdown(&groups, &defined[..1], "", &BTreeMap::new()).unwrap();
        assert!(!all.contains("Not run"), "{all}");
        // a logged group the script does not define
        let e = markdown(&groups, &defined[1..], "", &BTreeMap::new()).unwrap_err();
        assert!(e.contains("the group \"a\", which"), "{e}");
        for bad in [
            "groups=(\n\"a|src/a.rs|t\"\n)",
            "groups=(\n\"|src/a.rs|t|no\"\n)",
        ] {
            let e = parse_script(bad).unwrap_err();
            assert!(e.contains("line 2 is not"), "{bad}: {e}");
        }
        assert!(parse_script("x\n").unwrap_err().contains("no `groups=(`"));
        assert!(parse_script("groups=(\n\"a|b|c|no\"\n")
            .unwrap_err()
            .contains("not closed"));
    }

    #[test]
    fn a_bad_log_is_an_error_naming_the_line_and_the_field() {
        let e = parse("mutants\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = parse(&format!("{HEADER}a\t3\t3\t0\n")).unwrap_err();
        assert!(e.contains("line 2 has 4 fields, not 8"), "{e}");
        let e = parse(&format!("{HEADER}a\t3\tmany\t0\t0\t0\tc\t-\n")).unwrap_err();
        assert!(e.contains("line 2: caught is \"many\""), "{e}");
        let e = parse(&format!("{HEADER}a\t4\t3\t0\t0\t0\tc\t-\n")).unwrap_err();
        assert!(e.contains("not the 4 mutants"), "{e}");
        let e = parse(&format!("{HEADER}a\t3\t3\t0\t0\t0\tc\tsome\n")).unwrap_err();
        assert!(
            e.contains("line 2: missed_without_golden is \"some\""),
            "{e}"
        );
        let e = parse(&format!("{HEADER}a\t3\t2\t1\t0\t0\tc\t0\n")).unwrap_err();
        assert!(e.contains("outside 1..=3"), "{e}");
        let e = parse(&format!("{HEADER}a\t3\t3\t0\t0\t0\tc\t4\n")).unwrap_err();
        assert!(e.contains("outside 0..=3"), "{e}");
        // both ends of the range are allowed
        for m in [1, 3] {
            let groups = parse(&format!("{HEADER}a\t3\t2\t1\t0\t0\tc\t{m}\n")).unwrap();
            assert_eq!(groups[0].missed_without_golden, Some(m));
        }
    }

    #[test]
    fn the_directive_is_drawn_from_the_four_files_and_absent_reasons_are_no_reasons() {
        let root = std::env::temp_dir().join(format!("aiayn-mutation-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("book/runs")).unwrap();
        let write = |name: &str, text: &str| std::fs::write(root.join(name), text).unwrap();
        let log = format!("{HEADER}a\t3\t1\t2\t0\t0\tabc\t-\n");
        let script = "groups=(\n\"a|src/a.rs|t|no\"\n)\n";
        let missed = "a: src/a.rs:1:1: replace < with <= in f\na: src/a.rs:2:1: delete ! in g\n";
        let reasons = "a: src/a.rs:1:1: replace < with <= in f\tx is never 0 here\n";
        write(LOG, &log);
        write(SCRIPT, script);
        let groups = parse(&log).unwrap();
        let defined = parse_script(script).unwrap();
        let none = BTreeMap::new();
        // neither list yet: no survivors, no reasons
        assert_eq!(render(&root), markdown(&groups, &defined, "", &none));
        write(MISSED, missed);
        write(EQUIVALENT, reasons);
        let with = render(&root).unwrap();
        assert_eq!(
            Ok(with.clone()),
            markdown(
                &groups,
                &defined,
                missed,
                &parse_equivalent(reasons).unwrap()
            )
        );
        assert!(with.contains("x is never 0 here"), "{with}");
        // a list that exists but cannot be read is an error naming it
        for name in [MISSED, EQUIVALENT] {
            std::fs::remove_file(root.join(name)).unwrap();
            std::fs::create_dir(root.join(name)).unwrap();
            let e = render(&root).unwrap_err();
            assert!(e.starts_with(&format!("cannot read {name}: ")), "{e}");
            std::fs::remove_dir(root.join(name)).unwrap();
            write(name, "");
        }
        std::fs::remove_file(root.join(LOG)).unwrap();
        assert!(render(&root)
            .unwrap_err()
            .starts_with(&format!("cannot read {LOG}: ")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
