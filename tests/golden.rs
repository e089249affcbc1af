//! Golden fixtures: every `fixtures/*.json` (written by PyTorch, see fixtures/README.md) is
//! checked against this crate, and the harness itself is shown to catch mismatches and to
//! reject malformed files with a message that names the file and the field.

use std::path::{Path, PathBuf};
use std::process::Command;

use aiayn::fixture::{self, Fixture, Source, Tensor, OPS};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn all_fixtures() -> Vec<Fixture> {
    let files = fixture::discover(&fixtures_dir()).expect("fixtures/ is readable");
    files
        .iter()
        .map(|p| fixture::load(p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn load(name: &str) -> Fixture {
    fixture::load(&fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn json_of(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join(name)).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Every fixture in fixtures/, whatever its name: the forward values within the file's
/// tolerance (1e-12 absolute + 1e-10 relative in float64; for sacreBLEU's scores in `bleu-*`,
/// 1e-9 absolute on the score, the precisions and the brevity penalty, the counts exact); the autograd gradients within 1e-10 +
/// 1e-8 of this crate's backward passes, and within the file's gradient tolerance of a central
/// finite difference of this crate's forward pass.
#[test]
fn every_fixture_matches_pytorch() {
    let mut failures = Vec::new();
    let fixtures = all_fixtures();
    for f in &fixtures {
        let report = fixture::check(f).unwrap_or_else(|e| panic!("{e}"));
        for c in report.comparisons.iter().filter(|c| !c.passed()) {
            failures.push(format!(
                "{} {} ({}): {} of {} elements outside abs {:e} + rel {:e} (max abs error {:e})",
                f.path.display(),
                c.name,
                c.source.label(),
                c.mismatches,
                c.len,
                c.tolerance.abs,
                c.tolerance.rel,
                c.max_abs_error
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "fixtures that do not match:\n{}",
        failures.join("\n")
    );
}

/// Deleting fixtures must not make the suite pass vacuously: every op has a fixture, and
/// every layer op has gradients.
#[test]
fn every_op_has_a_fixture_and_every_layer_its_gradients() {
    let fixtures = all_fixtures();
    for op in OPS {
        assert!(
            fixtures.iter().any(|f| f.op == op),
            "no fixture exercises op {op}"
        );
    }
    for op in [
        "attention",
        "multi_head_attention",
        "feed_forward",
        "layer_norm",
        "encoder_layer",
        "decoder_layer",
        "transformer",
        "label_smoothing",
    ] {
        assert!(
            fixtures
                .iter()
                .any(|f| f.op == op && f.gradients.as_ref().is_some_and(|g| !g.wrt.is_empty())),
            "no fixture carries gradients for op {op}"
        );
    }
}

/// Gradients cover every parameter and every float input of the case they belong to.
#[test]
fn gradients_cover_every_parameter() {
    for f in all_fixtures() {
        let Some(g) = &f.gradients else { continue };
        for name in f.params.keys() {
            assert!(
                g.wrt.contains_key(name),
                "{}: no gradient for parameter {name}",
                f.path.display()
            );
        }
    }
}

fn largest(t: &Tensor) -> usize {
    (0..t.data.len())
        .max_by(|&a, &b| t.data[a].abs().total_cmp(&t.data[b].abs()))
        .expect("non-empty")
}

/// The harness can fail: scaling the largest expected value of any tensor by (1 + 1e-6), or
/// setting it to 1e-6 when it is zero, is reported as a mismatch, in every fixture.
#[test]
fn expected_values_perturbed_by_one_part_in_a_million_are_mismatches() {
    for f in all_fixtures() {
        for name in f.expected.keys() {
            let mut bad = f.clone();
            let t = bad.expected.get_mut(name).expect("present");
            let i = largest(t);
            // A tensor of zeros (a BLEU of 0) cannot be scaled: move its entry by 1e-6 instead.
            if t.data[i] == 0.0 {
                t.data[i] = 1e-6;
            } else {
                t.data[i] *= 1.0 + 1e-6;
            }
            let report = fixture::check(&bad).expect("still well formed");
            let c = report
                .comparisons
                .iter()
                .find(|c| c.name == format!("expected.{name}"))
                .expect("compared");
            assert!(
                !c.passed(),
                "{}: expected.{name} perturbed by 1e-6 went unnoticed",
                f.path.display()
            );
            assert_eq!(c.mismatches, 1, "exactly the perturbed element fails");
        }
    }
}

fn comparison<'a>(
    report: &'a fixture::Report,
    name: &str,
    source: Source,
) -> &'a fixture::Comparison {
    report
        .comparisons
        .iter()
        .find(|c| c.name == name && c.source == source)
        .unwrap_or_else(|| panic!("{name} ({}) compared", source.label()))
}

/// The gradient check can fail too: a gradient off by 0.01% (100 times the finite-difference
/// tolerance) is caught by both the backward and the finite-difference check.
#[test]
fn gradients_perturbed_by_one_part_in_ten_thousand_are_mismatches() {
    for name in [
        "attention-causal.json",
        "feed_forward-relu.json",
        "layer_norm-eps-1e-5.json",
    ] {
        let mut f = load(name);
        let g = f.gradients.as_mut().expect("has gradients");
        let (key, t) = g.wrt.iter_mut().next().expect("some gradient");
        let key = key.clone();
        let i = largest(t);
        t.data[i] *= 1.0 + 1e-4;
        let report = fixture::check(&f).expect("well formed");
        for source in [Source::Backward, Source::FiniteDifference] {
            let c = comparison(&report, &format!("gradients.wrt.{key}"), source);
            assert!(
                !c.passed(),
                "{name}: gradient {key} perturbed by 1e-4 went unnoticed by {}",
                source.label()
            );
        }
    }
}

/// A backward pass off by one part in a million is caught: the backward check's tolerance
/// (1e-10 + 1e-8 |want|) is a hundred times tighter than that error, while the finite
/// differences' (1e-7 + 1e-6 |want|), which has to absorb their truncation error, lets it
/// through. Shown for the largest gradient element of every op with a backward pass, tied
/// inputs included.
#[test]
fn a_gradient_off_by_one_part_in_a_million_fails_the_backward_check_only() {
    for (name, key) in [
        ("attention-causal.json", "q"),
        ("attention-self-tied.json", "x"),
        ("attention-shared-kv.json", "k"),
        ("multi_head_attention-self-tied.json", "x"),
        ("multi_head_attention-cross-tied.json", "w_v"),
        ("feed_forward-relu.json", "w_1"),
        ("feed_forward-d-model-1.json", "w_1"),
        ("layer_norm-eps-1e-5.json", "gain"),
        ("encoder_layer-post-norm.json", "x"),
        ("decoder_layer-post-norm.json", "memory"),
        ("transformer-tiny.json", "embedding"),
        ("label_smoothing-eps-0.1.json", "logits"),
    ] {
        let mut f = load(name);
        let t = f
            .gradients
            .as_mut()
            .expect("has gradients")
            .wrt
            .get_mut(key)
            .unwrap_or_else(|| panic!("{name}: no gradient {key}"));
        let i = largest(t);
        t.data[i] *= 1.0 + 1e-6;
        let report = fixture::check(&f).expect("well formed");
        let field = format!("gradients.wrt.{key}");
        let backward = comparison(&report, &field, Source::Backward);
        assert_eq!(
            backward.mismatches, 1,
            "{name}: {key} off by 1e-6 not caught by the backward check"
        );
        assert!(
            comparison(&report, &field, Source::FiniteDifference).passed(),
            "{name}: finite differences caught a 1e-6 error after all; the demonstration is moot"
        );
        assert!(
            !report.passed(),
            "{name}: a fixture passes only if both checks pass"
        );
    }
}

/// The label-smoothed loss's backward pass (-q / n on the log-probabilities), through the
/// log-softmax's, gives PyTorch's dL/d(logits) for `cross_entropy(label_smoothing = 0.1)`.
// verifies: eq:loss-backward (golden)
#[test]
fn the_smoothed_loss_gradient_matches_autograd() {
    let report = fixture::check(&load("label_smoothing-eps-0.1.json")).expect("well formed");
    let c = comparison(&report, "gradients.wrt.logits", Source::Backward);
    assert!(c.passed() && c.len == 55, "{c:?}");
    assert!(c.max_abs_error < 1e-15, "{c:?}");
}

/// The backward check runs only where a backward pass exists: a loss on an output the backward
/// pass takes no gradient for, or gradients for an op without one, is named, not skipped.
#[test]
fn gradients_the_backward_passes_cannot_check_are_named() {
    let mut j = json_of("multi_head_attention-self.json");
    j["gradients"]["loss_weights"]["weights"] = j["expected"]["weights"].clone();
    assert_eq!(
        check_err(&j),
        "fixtures/x.json: gradients.loss_weights.weights: the backward pass of op \
         multi_head_attention takes the gradient of output only"
    );
    let mut j = json_of("adam-noam.json");
    j["gradients"] = serde_json::json!({"loss_weights": {}, "wrt": {}});
    assert_eq!(
        check_err(&j),
        "fixtures/x.json: gradients: op adam has no backward pass to check gradients with"
    );
}

/// `backward_tolerance` is optional, defaults to 1e-10 + 1e-8, and is validated like the others.
#[test]
fn the_backward_tolerance_defaults_and_may_be_given() {
    let f = load("feed_forward-relu.json");
    assert_eq!(f.backward_tolerance, fixture::BACKWARD_TOLERANCE);
    assert_eq!(
        (f.backward_tolerance.abs, f.backward_tolerance.rel),
        (1e-10, 1e-8)
    );
    let mut j = json_of("feed_forward-relu.json");
    j["backward_tolerance"] = serde_json::json!({"abs": 1e-9, "rel": -1.0});
    assert!(
        parse_err(&j).contains("backward_tolerance.rel: missing, or not a finite number >= 0"),
        "{}",
        parse_err(&j)
    );
}

/// A changed input without a changed expectation fails: the check depends on the inputs.
#[test]
fn changing_an_input_breaks_the_match() {
    let mut f = load("multi_head_attention-cross.json");
    let t = f.inputs.get_mut("key").expect("has a key input");
    t.data[0] += 0.5;
    let report = fixture::check(&f).expect("well formed");
    assert!(!report.passed());
}

fn parse_err(json: &Value) -> String {
    fixture::parse(Path::new("fixtures/x.json"), json)
        .expect_err("malformed")
        .to_string()
}

fn check_err(json: &Value) -> String {
    let f = fixture::parse(Path::new("fixtures/x.json"), json).expect("parses");
    fixture::check(&f)
        .expect_err("does not fit its op")
        .to_string()
}

#[test]
fn a_missing_field_is_named() {
    let mut j = json_of("feed_forward-relu.json");
    j.as_object_mut().unwrap().remove("expected");
    assert_eq!(parse_err(&j), "fixtures/x.json: expected: missing");

    let mut j = json_of("feed_forward-relu.json");
    j["params"].as_object_mut().unwrap().remove("b_1");
    assert_eq!(check_err(&j), "fixtures/x.json: params.b_1: missing");

    let mut j = json_of("encoder_layer-post-norm.json");
    j["config"].as_object_mut().unwrap().remove("d_ff");
    assert!(
        check_err(&j).contains("config.d_ff: missing"),
        "{}",
        check_err(&j)
    );
}

#[test]
fn a_wrong_shape_is_named_with_both_shapes() {
    let mut j = json_of("feed_forward-relu.json");
    let w = j["params"]["w_1"].clone();
    let shape: Vec<u64> = w["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .collect();
    // Same data, transposed shape: what forgetting PyTorch's (out, in) layout looks like.
    j["params"]["w_1"]["shape"] = serde_json::json!([shape[1], shape[0]]);
    let msg = check_err(&j);
    assert!(
        msg.starts_with("fixtures/x.json: params.w_1: expected shape"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("[{}, {}]", shape[0], shape[1]))
            && msg.contains(&format!("[{}, {}]", shape[1], shape[0])),
        "{msg}"
    );

    let mut j = json_of("softmax-rows.json");
    j["inputs"]["x"]["shape"] = serde_json::json!([1000]);
    assert!(
        parse_err(&j).contains("inputs.x: shape [1000] needs 1000 numbers"),
        "{}",
        parse_err(&j)
    );
}

#[test]
fn an_expected_tensor_of_the_wrong_shape_is_named() {
    let mut j = json_of("feed_forward-relu.json");
    let data = j["expected"]["output"]["data"].as_array().unwrap().clone();
    j["expected"]["output"] = serde_json::json!({"shape": [data.len()], "data": data});
    let msg = check_err(&j);
    assert!(
        msg.starts_with("fixtures/x.json: expected.output: expected shape ["),
        "{msg}"
    );
}

#[test]
fn nan_in_expected_values_is_rejected() {
    // JSON has no NaN; Python's json module writes the bare word, which is not JSON either.
    let text = std::fs::read_to_string(fixtures_dir().join("softmax-rows.json")).unwrap();
    let j: Value = serde_json::from_str(&text).unwrap();
    let first = j["expected"]["y"]["data"][0].to_string();
    let poisoned = text.replacen(&first, "NaN", 1);
    let path = std::env::temp_dir().join(format!("aiayn-nan-{}.json", std::process::id()));
    std::fs::write(&path, poisoned).unwrap();
    let msg = fixture::load(&path)
        .expect_err("NaN is not accepted")
        .to_string();
    std::fs::remove_file(&path).ok();
    assert!(msg.contains("not valid JSON"), "{msg}");

    let mut j = json_of("softmax-rows.json");
    j["expected"]["y"]["data"][0] = Value::Null; // how serde_json itself writes NaN
    assert!(
        parse_err(&j).contains("expected.y: element 0 is null, not a finite number"),
        "{}",
        parse_err(&j)
    );
}

#[test]
fn an_unknown_op_lists_the_known_ones() {
    let mut j = json_of("softmax-rows.json");
    j["op"] = Value::from("gelu");
    let msg = parse_err(&j);
    assert!(
        msg.starts_with("fixtures/x.json: op: unknown op \"gelu\"; known ops: softmax, attention"),
        "{msg}"
    );
}

#[test]
fn a_wrong_format_tag_is_named() {
    let mut j = json_of("softmax-rows.json");
    j["format"] = Value::from("aiayn-fixture/2");
    assert!(parse_err(&j).contains("format: expected \"aiayn-fixture/1\""));
}

#[test]
fn token_ids_outside_the_vocabulary_are_named() {
    let mut j = json_of("transformer-tiny.json");
    j["inputs"]["src"]["data"][0] = Value::from(1000.0);
    let msg = check_err(&j);
    assert!(
        msg.contains("inputs.src: 1000 is not a token id in 0.."),
        "{msg}"
    );
}

fn aiayn(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aiayn"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn verify_exits_0_when_every_fixture_matches() {
    let files: Vec<String> = fixture::discover(&fixtures_dir())
        .unwrap()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let args: Vec<&str> = std::iter::once("verify")
        .chain(files.iter().map(String::as_str))
        .collect();
    let out = aiayn(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "{} passed, 0 failed, 0 unreadable or malformed",
            files.len()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("max abs") && stdout.contains("tolerance "),
        "{stdout}"
    );
    // Every gradient is reported twice: against the backward pass and finite differences.
    let w_q: Vec<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("gradients.wrt.w_q "))
        .collect();
    for source in ["backward", "finite diff"] {
        assert!(
            w_q.iter().any(|l| l.contains(&format!(" {source} "))),
            "{stdout}"
        );
    }
}

fn temp_file(tag: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("aiayn-{tag}-{}.json", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn verify_exits_1_on_a_mismatch() {
    let mut j = json_of("layer_norm-eps-1e-5.json");
    let x = j["expected"]["output"]["data"][3].as_f64().unwrap();
    j["expected"]["output"]["data"][3] = Value::from(x * (1.0 + 1e-6));
    let path = temp_file("mismatch", &j.to_string());
    let out = aiayn(&["verify", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("MISMATCH") && stdout.contains("1 of 32 outside"),
        "{stdout}"
    );
}

#[test]
fn verify_exits_2_on_a_truncated_file_without_a_panic() {
    let text = std::fs::read_to_string(fixtures_dir().join("softmax-rows.json")).unwrap();
    let path = temp_file("truncated", &text[..text.len() / 2]);
    let out = aiayn(&["verify", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: not valid JSON", path.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn verify_counts_each_kind_of_outcome_in_its_summary() {
    // One match, one mismatch, one file that is not JSON and one too large to read: the
    // summary counts each, and the exit status is that of the worst (2).
    let good = fixtures_dir().join("softmax-rows.json");
    let mut j = json_of("layer_norm-eps-1e-5.json");
    let x = j["expected"]["output"]["data"][3].as_f64().unwrap();
    j["expected"]["output"]["data"][3] = Value::from(x * (1.0 + 1e-6));
    let mismatch = temp_file("count-mismatch", &j.to_string());
    let not_json = temp_file("count-not-json", "{");
    let huge = temp_file("count-huge", "");
    std::fs::File::options()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let paths = [&good, &mismatch, &not_json, &huge].map(|p| p.display().to_string());
    let out = aiayn(&["verify", &paths[0], &paths[1], &paths[2], &paths[3]]);
    for p in [&mismatch, &not_json, &huge] {
        std::fs::remove_file(p).ok();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 1 failed, 2 unreadable or malformed"),
        "{stdout}"
    );
    // and with nothing but matches, 0
    let out = aiayn(&["verify", &paths[0], &paths[0]]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last(),
        Some("2 passed, 0 failed, 0 unreadable or malformed")
    );
}

#[test]
fn verify_exits_2_on_a_missing_file() {
    let out = aiayn(&["verify", "no/such/fixture.json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no/such/fixture.json: cannot read the file"),
        "{stderr}"
    );
}

#[test]
fn verify_exits_2_on_a_misshapen_parameter() {
    let mut j = json_of("multi_head_attention-self.json");
    j["params"]["w_o"]["shape"] = serde_json::json!([6, 24]);
    let path = temp_file("misshapen", &j.to_string());
    let out = aiayn(&["verify", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("params.w_o: expected shape [12, 12], found [6, 24]"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_equation_field_takes_an_id_a_list_or_nothing() {
    let parse = |equation: Value| {
        let mut j = json_of("softmax-rows.json");
        j["equation"] = equation;
        fixture::parse(Path::new("fixtures/x.json"), &j).map(|f| f.equations)
    };
    assert_eq!(parse(Value::from("eq:softmax")).unwrap(), ["eq:softmax"]);
    assert_eq!(
        parse(serde_json::json!(["eq:adam", "eq:lrate"])).unwrap(),
        ["eq:adam", "eq:lrate"]
    );
    assert!(parse(Value::from("")).unwrap().is_empty());
    let msg = parse(Value::from(3)).unwrap_err().to_string();
    assert!(
        msg.starts_with("fixtures/x.json: equation: must be an id"),
        "{msg}"
    );
}

#[test]
fn compare_reports_the_largest_errors_and_applies_abs_plus_rel() {
    let t = |data: &[f64]| Tensor::new(vec![data.len()], data.to_vec());
    let tol = fixture::Tolerance {
        abs: 0.0,
        rel: 0.01,
    };
    // Errors 0, 0.5 and 0.5; relative 0 and 0.5 / 100 (the zero want has no relative error).
    let c = fixture::compare("x", &t(&[1.0, 100.5, 0.5]), &t(&[1.0, 100.0, 0.0]), tol).unwrap();
    assert_eq!((c.max_abs_error, c.max_rel_error), (0.5, 0.005));
    // 0.5 <= 0.01 * 100 passes; 0.5 > 0.01 * 0 fails: exactly one mismatch.
    assert_eq!((c.mismatches, c.len), (1, 3));
    let abs = fixture::Tolerance { abs: 0.5, rel: 0.0 };
    assert!(fixture::compare("x", &t(&[1.5]), &t(&[1.0]), abs)
        .unwrap()
        .passed());
    assert!(!fixture::compare("x", &t(&[1.5 + 1e-9]), &t(&[1.0]), abs)
        .unwrap()
        .passed());
    assert!(!fixture::compare("x", &t(&[f64::NAN]), &t(&[1.0]), abs)
        .unwrap()
        .passed());
    let err = fixture::compare("x", &t(&[1.0, 2.0]), &t(&[1.0]), abs).unwrap_err();
    assert_eq!(err, "expected shape [1], but the op computes shape [2]");
}

#[test]
fn a_negative_or_missing_tolerance_is_named() {
    let mut j = json_of("softmax-rows.json");
    j["tolerance"]["rel"] = Value::from(-1e-10);
    assert!(
        parse_err(&j).contains("tolerance.rel: missing, or not a finite number >= 0"),
        "{}",
        parse_err(&j)
    );
    let mut j = json_of("softmax-rows.json");
    j["tolerance"].as_object_mut().unwrap().remove("abs");
    assert!(
        parse_err(&j).contains("tolerance.abs: missing"),
        "{}",
        parse_err(&j)
    );
}

#[test]
fn an_input_of_the_wrong_width_or_an_empty_batch_is_named() {
    let mut j = json_of("feed_forward-relu.json");
    j["inputs"]["x"] = serde_json::json!({"shape": [5, 7], "data": vec![0.0; 35]});
    let msg = check_err(&j);
    assert_eq!(
        msg,
        "fixtures/x.json: inputs.x: expected [.., n, 8] (width 8), found [5, 7]"
    );

    let mut j = json_of("encoder_layer-post-norm.json");
    j["inputs"]["x"] = serde_json::json!({"shape": [0, 4, 12], "data": []});
    let msg = check_err(&j);
    assert!(msg.starts_with("fixtures/x.json: inputs.x: expected shape [n, 12] or [batch >= 1, n, 12], found [0, 4, 12]"), "{msg}");
}

#[test]
fn token_ids_must_be_whole_and_non_negative() {
    for bad in [-1.0, 2.5] {
        let mut j = json_of("transformer-tiny.json");
        j["inputs"]["tgt"]["data"][1] = Value::from(bad);
        let msg = check_err(&j);
        assert!(
            msg.contains(&format!("inputs.tgt: {bad} is not a token id in 0..11")),
            "{msg}"
        );
    }
    let mut j = json_of("transformer-tiny.json");
    j["inputs"]["src"] = serde_json::json!({"shape": [0, 5], "data": []});
    let msg = check_err(&j);
    assert!(
        msg.contains("inputs.src: expected shape [n] or [batch >= 1, n], found [0, 5]"),
        "{msg}"
    );
}

#[test]
fn padding_flags_that_do_not_fit_the_keys_are_named() {
    let mut j = json_of("attention-padding.json");
    j["inputs"]["key_padding"] = serde_json::json!({"shape": [2, 4], "data": vec![0.0; 8]});
    let msg = check_err(&j);
    assert_eq!(msg, "fixtures/x.json: inputs.key_padding: expected 2 sequence(s) of 5 flags, found shape [2, 4]");
}

#[test]
fn a_causal_mask_with_more_queries_than_keys_is_named_not_a_panic() {
    for name in ["attention-plain.json", "multi_head_attention-cross.json"] {
        let mut j = json_of(name);
        j["config"]["causal"] = Value::Bool(true);
        // Queries shaped like the keys, with one row more than there are keys.
        let (qn, kn) = if name.starts_with("attention") {
            ("q", "k")
        } else {
            ("query", "key")
        };
        let mut q = j["inputs"][kn].clone();
        let shape = q["shape"].as_array().unwrap().clone();
        let rows_at = shape.len() - 2;
        let (rows, cols) = (
            shape[rows_at].as_u64().unwrap() as usize,
            shape[rows_at + 1].as_u64().unwrap() as usize,
        );
        let batch = if shape.len() == 3 {
            shape[0].as_u64().unwrap() as usize
        } else {
            1
        };
        let mut qshape = shape.clone();
        qshape[rows_at] = Value::from(rows + 1);
        q["shape"] = Value::Array(qshape);
        q["data"] = serde_json::json!(vec![0.5; batch * (rows + 1) * cols]);
        j["inputs"][qn] = q;
        let msg = check_err(&j);
        assert!(
            msg.ends_with(&format!(
                "config.causal: {} queries but only {rows} keys",
                rows + 1
            )),
            "{name}: {msg}"
        );
    }
}

/// The first item of a batched tensor, keeping a batch axis of one.
fn first_of_batch(t: &Value) -> Value {
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let per_item: usize = shape[1..].iter().product();
    let data = t["data"].as_array().unwrap()[..per_item].to_vec();
    let mut new_shape = shape.clone();
    new_shape[0] = 1;
    serde_json::json!({"shape": new_shape, "data": data})
}

/// Drops the batch axis of a batch of one.
fn unbatched(t: &Value) -> Value {
    let shape = t["shape"].as_array().unwrap()[1..].to_vec();
    serde_json::json!({"shape": shape, "data": t["data"].clone()})
}

/// An input without a batch axis is shared by every item of the batch, and the outputs keep
/// the batch axis as long as any input has one.
#[test]
fn unbatched_inputs_are_shared_across_a_batch() {
    let mut j = json_of("attention-padding.json");
    for name in ["q", "k", "v", "key_padding"] {
        j["inputs"][name] = first_of_batch(&j["inputs"][name]);
    }
    for name in ["output", "weights"] {
        j["expected"][name] = first_of_batch(&j["expected"][name]);
    }
    j.as_object_mut().unwrap().remove("gradients");
    for only_batched in ["q", "k", "v"] {
        let mut case = j.clone();
        for name in ["q", "k", "v", "key_padding"] {
            if name != only_batched && name != "key_padding" {
                case["inputs"][name] = unbatched(&j["inputs"][name]);
            }
        }
        let f = fixture::parse(Path::new("fixtures/x.json"), &case).unwrap();
        assert!(
            fixture::check(&f).unwrap().passed(),
            "only {only_batched} batched"
        );
    }

    let mut j = json_of("transformer-tiny.json");
    for name in ["src", "tgt", "src_key_padding"] {
        j["inputs"][name] = first_of_batch(&j["inputs"][name]);
    }
    for name in ["log_probs", "memory"] {
        j["expected"][name] = first_of_batch(&j["expected"][name]);
    }
    j.as_object_mut().unwrap().remove("gradients");
    for name in ["src", "tgt"] {
        let mut case = j.clone();
        case["inputs"][name] = unbatched(&j["inputs"][name]);
        let f = fixture::parse(Path::new("fixtures/x.json"), &case).unwrap();
        assert!(fixture::check(&f).unwrap().passed(), "{name} unbatched");
    }
}

#[test]
fn label_smoothing_with_one_class_is_named() {
    let mut j = json_of("label_smoothing-eps-0.1.json");
    j["config"]["vocab"] = Value::from(1);
    j["inputs"]["logits"] = serde_json::json!({"shape": [2, 1], "data": [0.0, 0.0]});
    j["inputs"]["target"] = serde_json::json!({"shape": [2], "data": [0.0, 0.0]});
    assert!(
        check_err(&j).ends_with("config.vocab: label smoothing needs at least 2 classes, got 1"),
        "{}",
        check_err(&j)
    );
}

/// The untied `multi_head_attention-self.json` passes one tensor as three separate inputs, so
/// its gradients are partial derivatives. Rewritten with `tied_inputs`, the same numbers say:
/// x feeds query, key and value, and dL/dx is the sum of the three partials. The finite
/// difference of the tied file perturbs all three slots at once and agrees; a `wrt.x` holding
/// only the query's partial is caught.
#[test]
fn a_tied_input_gradient_is_the_sum_of_the_partials() {
    let j = json_of("multi_head_attention-self.json");
    assert_eq!(j["inputs"]["query"], j["inputs"]["key"]);
    assert_eq!(j["inputs"]["query"], j["inputs"]["value"]);
    let partial = |slot: &str| -> Vec<f64> {
        j["gradients"]["wrt"][slot]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (d_query, d_key, d_value) = (partial("query"), partial("key"), partial("value"));
    let total: Vec<f64> = (0..d_query.len())
        .map(|i| d_query[i] + d_key[i] + d_value[i])
        .collect();

    let mut tied = j.clone();
    tied["tied_inputs"] = serde_json::json!({"x": ["query", "key", "value"]});
    let inputs = tied["inputs"].as_object_mut().unwrap();
    let x = inputs.remove("query").unwrap();
    inputs.remove("key");
    inputs.remove("value");
    inputs.insert("x".into(), x.clone());
    let wrt = tied["gradients"]["wrt"].as_object_mut().unwrap();
    for slot in ["query", "key", "value"] {
        wrt.remove(slot);
    }
    wrt.insert(
        "x".into(),
        serde_json::json!({"shape": x["shape"].clone(), "data": total}),
    );
    let f = fixture::parse(Path::new("fixtures/x.json"), &tied).unwrap();
    let report = fixture::check(&f).unwrap();
    assert!(report.passed(), "{report:?}");

    tied["gradients"]["wrt"]["x"]["data"] = serde_json::json!(d_query);
    let f = fixture::parse(Path::new("fixtures/x.json"), &tied).unwrap();
    let report = fixture::check(&f).unwrap();
    for source in [Source::Backward, Source::FiniteDifference] {
        assert!(
            !comparison(&report, "gradients.wrt.x", source).passed(),
            "a partial derivative passed as the total ({})",
            source.label()
        );
    }
}

/// Tying changes nothing in the forward pass: the tied file, with the tensor copied into each
/// slot by hand, gives the same outputs.
#[test]
fn a_tied_input_runs_like_the_same_tensor_in_every_slot() {
    for (name, tied, slots) in [
        (
            "multi_head_attention-self-tied.json",
            "x",
            &["query", "key", "value"][..],
        ),
        (
            "multi_head_attention-cross-tied.json",
            "memory",
            &["key", "value"][..],
        ),
        ("attention-self-tied.json", "x", &["q", "k", "v"][..]),
    ] {
        let mut j = json_of(name);
        assert_eq!(j["tied_inputs"][tied], serde_json::json!(slots), "{name}");
        j.as_object_mut().unwrap().remove("tied_inputs");
        j.as_object_mut().unwrap().remove("gradients");
        let inputs = j["inputs"].as_object_mut().unwrap();
        let t = inputs.remove(tied).unwrap();
        for slot in slots {
            inputs.insert(slot.to_string(), t.clone());
        }
        let f = fixture::parse(Path::new("fixtures/x.json"), &j).unwrap();
        assert!(f.tied_inputs.is_empty());
        assert!(fixture::check(&f).unwrap().passed(), "{name}");
    }
}

#[test]
fn a_tied_slot_that_the_op_does_not_have_is_named() {
    let mut j = json_of("multi_head_attention-self-tied.json");
    j["tied_inputs"]["x"] = serde_json::json!(["query", "keys", "value"]);
    assert_eq!(
        parse_err(&j),
        "fixtures/x.json: tied_inputs.x: \"keys\" is not an input of op multi_head_attention \
         that a tensor can feed (query, key, value)"
    );
    // Padding flags are inputs, but not ones a tensor of vectors can stand for.
    j["tied_inputs"]["x"] = serde_json::json!(["query", "key_padding"]);
    assert!(
        parse_err(&j).contains("\"key_padding\" is not an input of op multi_head_attention"),
        "{}",
        parse_err(&j)
    );
    let mut j = json_of("transformer-tiny.json");
    j["tied_inputs"] = serde_json::json!({"ids": ["src", "tgt"]});
    assert_eq!(
        parse_err(&j),
        "fixtures/x.json: tied_inputs.ids: \"src\": op transformer has no input a tied tensor can feed"
    );
}

#[test]
fn a_tied_slot_also_given_in_inputs_is_named() {
    let mut j = json_of("multi_head_attention-self-tied.json");
    j["inputs"]["key"] = j["inputs"]["x"].clone();
    assert_eq!(
        parse_err(&j),
        "fixtures/x.json: tied_inputs.x: slot \"key\" is fed by inputs.x, so inputs.key must be absent"
    );
}

#[test]
fn a_missing_tied_tensor_is_named() {
    let mut j = json_of("multi_head_attention-cross-tied.json");
    j["inputs"].as_object_mut().unwrap().remove("memory");
    assert_eq!(
        parse_err(&j),
        "fixtures/x.json: tied_inputs.memory: the tied tensor inputs.memory is missing"
    );
}

/// The slots a tied tensor may feed, op by op, are those fixtures/README.md lists; the other
/// ops have none. A tied tensor may not take the name of one of the op's own inputs (those
/// its committed fixture gives).
#[test]
fn each_op_takes_tied_tensors_in_the_slots_the_format_documents() {
    let documented: [(&str, &[&str]); 13] = [
        ("softmax", &["x"]),
        ("attention", &["q", "k", "v"]),
        ("multi_head_attention", &["query", "key", "value"]),
        ("feed_forward", &["x"]),
        ("layer_norm", &["x"]),
        ("encoder_layer", &["x"]),
        ("decoder_layer", &["x", "memory"]),
        ("transformer", &[]),
        ("positional_encoding", &[]),
        ("label_smoothing", &["logits"]),
        ("adam", &[]),
        ("param_count", &[]),
        ("bleu", &[]),
    ];
    let mut ops: Vec<&str> = documented.iter().map(|(op, _)| *op).collect();
    ops.sort_unstable();
    let mut all = OPS.to_vec();
    all.sort_unstable();
    assert_eq!(ops, all, "every op is documented once");
    let untied: Vec<Value> = fixture::discover(&fixtures_dir())
        .expect("fixtures/ is readable")
        .iter()
        .map(|p| json_of(p.file_name().unwrap().to_str().unwrap()))
        .filter(|j| j.get("tied_inputs").is_none())
        .collect();
    let mut collisions = 0;
    for (op, slots) in documented {
        let j = untied
            .iter()
            .find(|j| j["op"] == op)
            .unwrap_or_else(|| panic!("no fixture of op {op} without tied inputs"));
        let mut bad = j.clone();
        bad["tied_inputs"] = serde_json::json!({"t": ["nope"]});
        let want = if slots.is_empty() {
            format!("\"nope\": op {op} has no input a tied tensor can feed")
        } else {
            format!(
                "\"nope\" is not an input of op {op} that a tensor can feed ({})",
                slots.join(", ")
            )
        };
        assert_eq!(
            parse_err(&bad),
            format!("fixtures/x.json: tied_inputs.t: {want}")
        );
        // BLEU's inputs are sentences, not tensors: no tied tensor feeds them, whatever its name
        if op == "bleu" {
            continue;
        }
        for input in j["inputs"].as_object().unwrap().keys() {
            let mut bad = j.clone();
            bad["tied_inputs"] = serde_json::json!({ input: [slots.first().unwrap_or(&"x")] });
            assert_eq!(
                parse_err(&bad),
                format!(
                    "fixtures/x.json: tied_inputs.{input}: {input:?} is itself an input of op \
                     {op}; give the tied tensor a name of its own"
                ),
            );
            collisions += 1;
        }
    }
    assert!(collisions >= 15, "{collisions}");
}

#[test]
fn a_slot_fed_twice_or_a_tied_name_that_is_a_slot_is_named() {
    let mut j = json_of("multi_head_attention-cross-tied.json");
    j["inputs"]["other"] = j["inputs"]["memory"].clone();
    j["tied_inputs"]["other"] = serde_json::json!(["value"]);
    assert_eq!(
        parse_err(&j),
        "fixtures/x.json: tied_inputs.other: slot \"value\" is already fed by tied_inputs.memory"
    );
    let mut j = json_of("multi_head_attention-cross-tied.json");
    j["tied_inputs"] = serde_json::json!({"memory": []});
    assert!(
        parse_err(&j).ends_with("tied_inputs.memory: must be a non-empty list of input slot names"),
        "{}",
        parse_err(&j)
    );
    let mut j = json_of("multi_head_attention-self-tied.json");
    j["inputs"]["query"] = j["inputs"]["x"].clone();
    j["tied_inputs"] = serde_json::json!({"query": ["key", "value"]});
    assert!(
        parse_err(&j).contains("tied_inputs.query: \"query\" is itself an input of op"),
        "{}",
        parse_err(&j)
    );
}

/// One tensor cannot feed slots the op wants in different widths, and a tied tensor of the
/// wrong width is named with the slot it was checked as.
#[test]
fn tied_slots_of_different_shapes_are_named() {
    let mut j = json_of("attention-self-tied.json");
    j["config"]["d_v"] = Value::from(6);
    assert_eq!(
        check_err(&j),
        "fixtures/x.json: tied_inputs.x: one tensor cannot feed both \"q\" (width d_k = 4) and \
         \"v\" (width d_v = 6)"
    );
    let mut j = json_of("multi_head_attention-self-tied.json");
    j["inputs"]["x"] = serde_json::json!({"shape": [2, 6, 8], "data": vec![0.0; 96]});
    assert_eq!(
        check_err(&j),
        "fixtures/x.json: inputs.x (as query): expected [.., n, 12] (width 12), found [2, 6, 8]"
    );
    // An input beside the tied ones is named as itself.
    let mut j = json_of("multi_head_attention-self-tied.json");
    j["inputs"]["key_padding"] = serde_json::json!({"shape": [2, 5], "data": vec![0.0; 10]});
    let msg = check_err(&j);
    assert!(
        msg.starts_with("fixtures/x.json: inputs.key_padding: ") && !msg.contains("(as "),
        "{msg}"
    );
}
