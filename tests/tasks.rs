//! §5.1: the synthetic tasks the book's model trains on, and batching by approximate length.

use aiayn::train::batch::{batches_by_length, batches_by_length_in_pools, Batch, POOL_SIZE};
use aiayn::train::tasks::{
    novel_combinations, Pair, Task, TaskError, ADJECTIVES, BOS, EOS, NOUNS, PAD,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

const REGRESSIONS: &str = "proptest-regressions/tasks.txt";

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    }
}

/// Each task built once with seed 1 and shared by the tests of this file.
fn task(name: &str) -> &'static Task {
    static TASKS: OnceLock<HashMap<&'static str, Task>> = OnceLock::new();
    &TASKS.get_or_init(|| {
        Task::names()
            .iter()
            .map(|&n| (n, Task::by_name(n, 1).unwrap()))
            .collect()
    })[name]
}

fn words(task: &Task, ids: &[usize]) -> Vec<String> {
    ids.iter()
        .map(|&i| task.vocab.word(i).to_string())
        .collect()
}

// --- The tasks --------------------------------------------------------------------------------

#[test]
fn same_seed_gives_the_same_task() {
    for &name in Task::names() {
        let again = Task::by_name(name, 1).unwrap();
        let first = task(name);
        assert_eq!(again.train, first.train, "{name}");
        assert_eq!(again.held_out, first.held_out, "{name}");
        assert_eq!(again.vocab.len(), first.vocab.len(), "{name}");
    }
}

#[test]
fn different_seeds_give_different_data() {
    for &name in Task::names() {
        let other = Task::by_name(name, 2).unwrap();
        let first = task(name);
        assert_ne!(other.train, first.train, "{name}");
        assert_ne!(other.held_out, first.held_out, "{name}");
        let a: HashSet<&Pair> = first.train.iter().collect();
        let shared = other.train.iter().filter(|p| a.contains(p)).count();
        assert!(
            shared < other.train.len() / 2,
            "{name}: {shared} shared pairs"
        );
    }
}

#[test]
fn split_sizes_are_as_documented() {
    let sizes: Vec<(usize, usize)> = Task::names()
        .iter()
        .map(|n| (task(n).train.len(), task(n).held_out.len()))
        .collect();
    assert_eq!(sizes, vec![(20_000, 500), (20_000, 500), (30_000, 1_000)]);
}

#[test]
fn train_and_held_out_are_disjoint_and_have_no_repeats() {
    for &name in Task::names() {
        let t = task(name);
        let train: HashSet<&Vec<usize>> = t.train.iter().map(|p| &p.src).collect();
        let held: HashSet<&Vec<usize>> = t.held_out.iter().map(|p| &p.src).collect();
        assert_eq!(
            train.len(),
            t.train.len(),
            "{name}: repeated training source"
        );
        assert_eq!(
            held.len(),
            t.held_out.len(),
            "{name}: repeated held-out source"
        );
        assert!(
            train.is_disjoint(&held),
            "{name}: a held-out source is in training"
        );
    }
}

#[test]
fn every_held_out_word_occurs_in_training() {
    for &name in Task::names() {
        let t = task(name);
        let seen: HashSet<usize> = t
            .train
            .iter()
            .flat_map(|p| p.src.iter().chain(&p.tgt))
            .copied()
            .collect();
        for p in &t.held_out {
            for id in p.src.iter().chain(&p.tgt) {
                assert!(
                    seen.contains(id),
                    "{name}: `{}` never in training",
                    t.vocab.word(*id)
                );
            }
        }
    }
}

#[test]
fn lengths_are_within_bounds() {
    for (name, lo, hi) in [("copy", 3, 20), ("reverse", 3, 20), ("translate", 3, 30)] {
        let t = task(name);
        assert_eq!((t.min_len, t.max_len), (lo, hi), "{name}");
        let lens: Vec<usize> = t
            .train
            .iter()
            .chain(&t.held_out)
            .map(|p| p.src.len())
            .collect();
        assert!(lens.iter().all(|n| (lo..=hi).contains(n)), "{name}");
        assert_eq!(lens.iter().min(), Some(&lo), "{name}: shortest");
        assert!(
            *lens.iter().max().unwrap() >= 20,
            "{name}: nothing as long as 20"
        );
        for p in t.train.iter().chain(&t.held_out) {
            assert_eq!(
                p.src.len(),
                p.tgt.len(),
                "{name}: one target token per source token"
            );
        }
    }
}

#[test]
fn sequence_lengths_are_roughly_uniform() {
    let t = task("copy");
    let mut count = [0usize; 21];
    for p in &t.train {
        count[p.src.len()] += 1;
    }
    // 20,000 over 18 lengths: about 1,111 each.
    for (n, &c) in count.iter().enumerate().skip(3) {
        assert!((900..1300).contains(&c), "length {n}: {c} sequences");
    }
}

#[test]
fn translate_noun_phrases_are_mostly_bare_and_have_at_most_two_adjectives() {
    // The generator draws a noun phrase's adjectives as none (1/2), one (7/20) or two (3/20);
    // counted over the training sentences, after every determiner. Training drops sentences over
    // the length limit, repeats and the held-out combinations (adjective and noun), which
    // leaves a few more bare phrases (52.5 %) than drawn.
    use aiayn::train::tasks::{ADJECTIVES, SOURCE_DETERMINERS};
    let t = task("translate");
    let mut count = [0usize; 4];
    for p in &t.train {
        let text = t.vocab.decode(&p.src);
        let words: Vec<&str> = text.split(' ').collect();
        for (i, w) in words.iter().enumerate() {
            if SOURCE_DETERMINERS.contains(w) {
                let adjs = words[i + 1..]
                    .iter()
                    .take_while(|w| ADJECTIVES.iter().any(|a| a.0 == **w))
                    .count();
                count[adjs.min(3)] += 1;
            }
        }
    }
    let phrases: usize = count.iter().sum();
    assert!(phrases > 50_000, "{phrases} noun phrases");
    assert_eq!(count[3], 0, "three adjectives or more");
    for (k, want) in [(0, 0.5), (1, 0.35), (2, 0.15)] {
        let got = count[k] as f64 / phrases as f64;
        assert!(
            (got - want).abs() < 0.03,
            "{k} adjectives: {got:.3} of the phrases, not {want}"
        );
    }
}

#[test]
fn translate_favours_short_sentences_but_has_long_ones() {
    let t = task("translate");
    let mut lens: Vec<usize> = t.train.iter().map(|p| p.src.len()).collect();
    lens.sort_unstable();
    let median = lens[lens.len() / 2];
    let long = lens.iter().filter(|&&n| n >= 20).count();
    assert!((6..=10).contains(&median), "median length {median}");
    assert!(
        long >= t.train.len() / 50,
        "only {long} sentences of 20 tokens or more"
    );
    // the limit is inclusive: sentences of exactly TRANSLATE_MAX_LEN tokens are kept
    use aiayn::train::tasks::TRANSLATE_MAX_LEN;
    let at_limit = lens.iter().filter(|&&n| n == TRANSLATE_MAX_LEN).count();
    assert!(at_limit > 0, "no sentence of {TRANSLATE_MAX_LEN} tokens");
}

#[test]
fn copy_and_reverse_targets_are_the_source_and_its_reverse() {
    for p in &task("copy").train {
        assert_eq!(p.tgt, p.src);
    }
    for p in &task("reverse").held_out {
        let mut r = p.tgt.clone();
        r.reverse();
        assert_eq!(r, p.src);
    }
    let alphabet: HashSet<usize> = task("copy")
        .train
        .iter()
        .flat_map(|p| p.src.clone())
        .collect();
    assert_eq!(alphabet.len(), 20);
    assert_eq!(task("copy").vocab.len(), 23);
}

#[test]
fn translate_has_at_least_sixty_words_on_each_side() {
    let t = task("translate");
    let src: HashSet<usize> = t.train.iter().flat_map(|p| p.src.clone()).collect();
    let tgt: HashSet<usize> = t.train.iter().flat_map(|p| p.tgt.clone()).collect();
    assert!(src.len() >= 60, "{} source words", src.len());
    assert!(tgt.len() >= 60, "{} target words", tgt.len());
    assert!(src.is_disjoint(&tgt), "a word is on both sides");
    assert_eq!((src.len(), tgt.len()), (88, 83));
    assert!([PAD, BOS, EOS]
        .iter()
        .all(|s| !src.contains(s) && !tgt.contains(s)));
}

/// The held-out rule, typed from the documentation: noun i with adjective i mod 10.
const NOVEL: [(&str, &str); 20] = [
    ("big", "dog"),
    ("small", "cat"),
    ("red", "bird"),
    ("old", "horse"),
    ("young", "farmer"),
    ("happy", "child"),
    ("quiet", "teacher"),
    ("brave", "girl"),
    ("green", "boy"),
    ("tired", "king"),
    ("big", "queen"),
    ("small", "wolf"),
    ("red", "baker"),
    ("old", "sailor"),
    ("young", "friend"),
    ("happy", "ball"),
    ("quiet", "book"),
    ("brave", "apple"),
    ("green", "house"),
    ("tired", "boat"),
];

/// The (adjective, singular noun) combinations of a source sentence: every adjective with the
/// noun that ends its run of adjectives.
fn combinations(task: &Task, src: &[usize]) -> Vec<(String, String)> {
    let singular: HashMap<&str, &str> = NOUNS
        .iter()
        .flat_map(|n| [(n.0, n.0), (n.1, n.0)])
        .collect();
    let adjectives: HashSet<&str> = ADJECTIVES.iter().map(|a| a.0).collect();
    let w = words(task, src);
    let mut out = Vec::new();
    for (i, word) in w.iter().enumerate() {
        if let Some(noun) = singular.get(word.as_str()) {
            let mut j = i;
            while j > 0 && adjectives.contains(w[j - 1].as_str()) {
                out.push((w[j - 1].clone(), noun.to_string()));
                j -= 1;
            }
        }
    }
    out
}

#[test]
fn held_out_sentences_hold_a_combination_training_never_shows() {
    let novel: HashSet<(String, String)> = NOVEL
        .iter()
        .map(|(a, n)| (a.to_string(), n.to_string()))
        .collect();
    assert_eq!(novel_combinations(), NOVEL.to_vec());
    let t = task("translate");
    let mut in_training = HashSet::new();
    for p in &t.train {
        for c in combinations(t, &p.src) {
            assert!(
                !novel.contains(&c),
                "training holds {c:?}: {}",
                t.vocab.decode(&p.src)
            );
            in_training.insert(c);
        }
    }
    // All 180 other combinations do occur in training.
    assert_eq!(in_training.len(), 200 - 20);
    let mut in_held_out = HashSet::new();
    for p in &t.held_out {
        let novel_here: Vec<_> = combinations(t, &p.src)
            .into_iter()
            .filter(|c| novel.contains(c))
            .collect();
        assert!(
            !novel_here.is_empty(),
            "nothing novel in {}",
            t.vocab.decode(&p.src)
        );
        in_held_out.extend(novel_here);
    }
    assert_eq!(in_held_out, novel, "every novel combination is tested");
}

fn translate(sentence: &str) -> Option<String> {
    let t = task("translate");
    let src = t.vocab.encode(sentence).unwrap();
    t.translate_reference(&src).map(|tgt| t.vocab.decode(&tgt))
}

#[test]
fn translate_reorders_and_agrees() {
    let cases = [
        // SOV; adjectives after the noun, in the noun's gender (dog masculine, cat feminine).
        (
            "the big dog sees a small cat",
            "ta hund grando eka mirel pikke vidat",
        ),
        // Plural: determiners carry number, the verb agrees with the subject.
        ("some dogs see the cats", "eks hund tes mirel vidant"),
        ("the dogs sleep", "tas hund dormant"),
        // A relative clause follows its noun and agrees with it; the object precedes the verb.
        (
            "a girl that sleeps likes the old horses",
            "eka nessa ke dormat tas taldo veto amat",
        ),
        // Prepositions become postpositions; an adverbial phrase precedes the verb.
        (
            "the children run near the big house",
            "tes pelin ta domo grando apud kurant",
        ),
        // Two clauses, a prepositional phrase on the subject, a transitive relative clause.
        (
            "the king with the red ball sings and the queens that find a book wait",
            "ta rodan te bolu rose kun kantat i tes sirel ke ek libra trovant restant",
        ),
        // Two adjectives keep their order; a plural relative clause inside the object.
        (
            "a brave young sailor pushes some green boats that carry the old apples",
            "ek marut forto juno ekas navis verde ke tes pomel vete portant pulsat",
        ),
    ];
    for (src, tgt) in cases {
        assert_eq!(translate(src).as_deref(), Some(tgt), "{src}");
    }
}

#[test]
fn translate_rejects_sentences_outside_the_grammar() {
    for src in [
        "",
        "a dogs sleep",                                          // "a" is singular
        "some dog sleeps",                                       // "some" is plural
        "the dog see the cat", // the verb disagrees with the subject
        "the dog sleep",       // an intransitive verb that disagrees with the subject
        "the dogs that sleeps see the cat", // an intransitive relative clause that disagrees
        "the dogs that sees the cat sleep", // the relative clause disagrees with its noun
        "the dog sees",        // no object
        "the dog sleeps the cat", // an object for an intransitive verb
        "the big red old dog sleeps", // three adjectives
        "dog sleeps",          // no determiner
        "the dog sleeps and",  // nothing after "and"
        "the dog sleeps and the cat sleeps and the bird sleeps", // two "and"s
        "the dog with the cat that sleeps sees a boy", // both a phrase and a relative clause
        "ta hund dormat",      // the target language
    ] {
        assert_eq!(translate(src), None, "{src:?}");
    }
    let copy = task("copy");
    assert_eq!(copy.translate_reference(&[]), None);
    assert_eq!(copy.translate_reference(&[3, 4, PAD]), None);
    assert_eq!(copy.translate_reference(&[3, 23]), None);
    let long: Vec<usize> = (0..40).map(|i| 3 + i % 20).collect();
    assert_eq!(copy.translate_reference(&long), Some(long.clone()));
    let reversed: Vec<usize> = long.iter().rev().copied().collect();
    assert_eq!(task("reverse").translate_reference(&long), Some(reversed));
}

#[test]
fn every_generated_pair_is_its_reference_translation() {
    for &name in Task::names() {
        let t = task(name);
        for p in t.train.iter().chain(&t.held_out) {
            assert_eq!(
                t.translate_reference(&p.src).as_ref(),
                Some(&p.tgt),
                "{name}"
            );
        }
    }
}

#[test]
fn unknown_words_are_named_with_their_position() {
    let t = task("translate");
    let err = t.vocab.encode("the dog chases a  cat").unwrap_err();
    assert_eq!(
        err,
        TaskError::UnknownWord {
            word: "chases".into(),
            position: 2
        }
    );
    assert_eq!(err.to_string(), "unknown word `chases` at position 2");
}

#[test]
fn unknown_tasks_are_an_error_listing_the_tasks() {
    let err = Task::by_name("sort", 1).unwrap_err();
    assert_eq!(
        err,
        TaskError::UnknownTask {
            name: "sort".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown task `sort`; the tasks are: copy, reverse, translate"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(boxed.to_string().contains("sort"));
}

#[test]
fn special_tokens_are_the_first_three_ids() {
    for &name in Task::names() {
        let v = &task(name).vocab;
        assert_eq!(
            (v.id("<pad>"), v.id("<s>"), v.id("</s>")),
            (Some(PAD), Some(BOS), Some(EOS))
        );
        assert_eq!(v.decode(&[BOS, 3, PAD, EOS, PAD]), v.word(3));
        assert!(!v.is_empty() && v.len() > 3, "{name}: {} tokens", v.len());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decode_then_encode_returns_the_ids(
        name in prop::sample::select(Task::names()),
        picks in prop::collection::vec(0usize..1000, 1..30),
    ) {
        let v = &task(name).vocab;
        let ids: Vec<usize> = picks.iter().map(|&p| 3 + p % (v.len() - 3)).collect();
        let text = v.decode(&ids);
        prop_assert_eq!(text.split(' ').count(), ids.len());
        prop_assert_eq!(v.encode(&text).unwrap(), ids);
    }
}

// --- Batching ---------------------------------------------------------------------------------

/// Up to 300 pairs of lengths 1..40 (source and target independent), tokens 3..50.
fn pairs() -> impl Strategy<Value = Vec<Pair>> {
    let seq = prop::collection::vec(3usize..50, 1..40);
    prop::collection::vec((seq.clone(), seq), 0..300)
        .prop_map(|v| v.into_iter().map(|(src, tgt)| Pair { src, tgt }).collect())
}

fn check_batch(pairs: &[Pair], b: &Batch) -> Result<(), TestCaseError> {
    let n_s = b.indices.iter().map(|&i| pairs[i].src.len()).max().unwrap();
    let n_t = b.indices.iter().map(|&i| pairs[i].tgt.len()).max().unwrap() + 1;
    prop_assert_eq!(b.len(), b.indices.len());
    for (r, &i) in b.indices.iter().enumerate() {
        let Pair { src, tgt } = &pairs[i];
        prop_assert_eq!(b.src[r].len(), n_s);
        prop_assert_eq!(&b.src[r][..src.len()], &src[..]);
        for j in 0..n_s {
            prop_assert_eq!(b.src_padding[r][j], j >= src.len());
            prop_assert_eq!(b.src_padding[r][j], b.src[r][j] == PAD);
        }
        prop_assert_eq!(b.tgt_in[r].len(), n_t);
        prop_assert_eq!(b.tgt_out[r].len(), n_t);
        prop_assert_eq!(b.tgt_in[r][0], BOS);
        prop_assert_eq!(&b.tgt_in[r][1..=tgt.len()], &tgt[..]);
        prop_assert_eq!(&b.tgt_out[r][..tgt.len()], &tgt[..]);
        prop_assert_eq!(b.tgt_out[r][tgt.len()], EOS);
        for j in 0..n_t {
            prop_assert_eq!(b.tgt_padding[r][j], j > tgt.len());
            prop_assert_eq!(b.tgt_padding[r][j], b.tgt_out[r][j] == PAD);
            prop_assert_eq!(b.tgt_padding[r][j], j > 0 && b.tgt_in[r][j] == PAD);
        }
    }
    let src_real: usize = b.indices.iter().map(|&i| pairs[i].src.len()).sum();
    let tgt_real: usize = b.indices.iter().map(|&i| pairs[i].tgt.len() + 1).sum();
    prop_assert_eq!((b.src_tokens(), b.tgt_tokens()), (src_real, tgt_real));
    prop_assert_eq!(b.padded_src_tokens(), b.len() * n_s);
    prop_assert_eq!(b.padded_tgt_tokens(), b.len() * n_t);
    prop_assert_eq!(b.padded_tokens(), b.len() * (n_s + n_t));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_pair_is_in_exactly_one_batch(pairs in pairs(), max_tokens in 0usize..400, seed: u64) {
        let batches = batches_by_length(&pairs, max_tokens, &mut StdRng::seed_from_u64(seed));
        let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..pairs.len()).collect::<Vec<_>>());
        prop_assert!(batches.iter().all(|b| !b.is_empty()));
    }

    #[test]
    fn padded_tokens_per_side_stay_within_the_budget(
        pairs in pairs(), max_tokens in 0usize..400, pool in 1usize..100, seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        for b in batches_by_length_in_pools(&pairs, max_tokens, pool, &mut rng) {
            let over = b.padded_src_tokens() > max_tokens || b.padded_tgt_tokens() > max_tokens;
            // Only a pair too long for the budget on its own may break it, and it stays alone.
            prop_assert!(!over || b.len() == 1, "{} pairs over the budget", b.len());
        }
    }

    #[test]
    fn batches_hold_the_padded_pairs(pairs in pairs(), max_tokens in 0usize..400, seed: u64) {
        for b in batches_by_length(&pairs, max_tokens, &mut StdRng::seed_from_u64(seed)) {
            check_batch(&pairs, &b)?;
        }
    }

    #[test]
    fn batches_of_one_pool_cover_disjoint_length_ranges(
        pairs in pairs(), max_tokens in 40usize..400, seed: u64,
    ) {
        // Fewer than POOL_SIZE pairs: one pool, sorted by source length, cut into runs.
        let batches = batches_by_length(&pairs, max_tokens, &mut StdRng::seed_from_u64(seed));
        let mut ranges: Vec<(usize, usize)> = batches
            .iter()
            .map(|b| {
                let lens = b.indices.iter().map(|&i| pairs[i].src.len());
                (lens.clone().min().unwrap(), lens.max().unwrap())
            })
            .collect();
        ranges.sort_unstable();
        for w in ranges.windows(2) {
            prop_assert!(w[0].1 <= w[1].0, "overlapping source lengths {:?}", w);
        }
    }

    #[test]
    fn the_same_generator_state_gives_the_same_batches(
        pairs in pairs(), max_tokens in 0usize..400, seed: u64,
    ) {
        let a = batches_by_length(&pairs, max_tokens, &mut StdRng::seed_from_u64(seed));
        let b = batches_by_length(&pairs, max_tokens, &mut StdRng::seed_from_u64(seed));
        prop_assert_eq!(a, b);
    }
}

#[test]
fn a_pair_longer_than_the_budget_is_a_batch_of_one() {
    let long = Pair {
        src: vec![5; 30],
        tgt: vec![6; 3],
    };
    let short = Pair {
        src: vec![7; 2],
        tgt: vec![8; 2],
    };
    let pairs = vec![short.clone(), long, short.clone(), short];
    let batches = batches_by_length(&pairs, 10, &mut StdRng::seed_from_u64(0));
    let lone: Vec<&Batch> = batches.iter().filter(|b| b.indices == [1]).collect();
    assert_eq!(lone.len(), 1);
    assert_eq!(lone[0].padded_src_tokens(), 30);
    // The three short pairs (n_s 2, n_t 3) fit one batch: 3 * 3 = 9 <= 10.
    assert_eq!(batches.len(), 2);
    assert!(batches_by_length(&[], 10, &mut StdRng::seed_from_u64(0)).is_empty());
}

#[test]
fn different_generator_states_give_different_orders() {
    let t = task("copy");
    let a = batches_by_length(&t.train, 1000, &mut StdRng::seed_from_u64(1));
    let b = batches_by_length(&t.train, 1000, &mut StdRng::seed_from_u64(2));
    assert_ne!(a[0].indices, b[0].indices);
    let mut rng = StdRng::seed_from_u64(1);
    let epoch_1 = batches_by_length(&t.train, 1000, &mut rng);
    let epoch_2 = batches_by_length(&t.train, 1000, &mut rng);
    assert_eq!(epoch_1, a);
    assert_ne!(epoch_1[0].indices, epoch_2[0].indices);
}

#[test]
fn sorted_pools_waste_little_on_padding_and_fill_the_budget() {
    for &name in Task::names() {
        let t = task(name);
        assert!(t.train.len() > POOL_SIZE, "{name}: more than one pool");
        let efficiency = |batches: &[Batch]| {
            let real: usize = batches
                .iter()
                .map(|b| b.src_tokens() + b.tgt_tokens())
                .sum();
            let padded: usize = batches.iter().map(Batch::padded_tokens).sum();
            real as f64 / padded as f64
        };
        let sorted = batches_by_length(&t.train, 2000, &mut StdRng::seed_from_u64(0));
        assert!(
            efficiency(&sorted) > 0.93,
            "{name}: {}",
            efficiency(&sorted)
        );
        // The same batch sizes filled in random order waste far more.
        let mut order: Vec<usize> = (0..t.train.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(0));
        let mut rest = &order[..];
        let unsorted: Vec<Batch> = sorted
            .iter()
            .map(|b| {
                let (these, others) = rest.split_at(b.len());
                rest = others;
                Batch::from_pairs(&t.train, these)
            })
            .collect();
        assert!(
            efficiency(&unsorted) < 0.8,
            "{name}: {}",
            efficiency(&unsorted)
        );
        // Sorted batches nearly fill the budget on their longer side.
        let mean_fill = sorted
            .iter()
            .map(|b| b.padded_src_tokens().max(b.padded_tgt_tokens()) as f64 / 2000.0)
            .sum::<f64>()
            / sorted.len() as f64;
        assert!(
            mean_fill > 0.9,
            "{name}: batches {mean_fill:.2} full on average"
        );
    }
}

#[test]
fn a_batch_fills_its_budget_exactly_before_a_new_one_starts() {
    // Twelve pairs of one shape and a budget of exactly four of them: three batches of four,
    // whichever side binds (a batch of b pairs holds b * n_s source and b * n_t target slots,
    // n_t counting the end of sentence).
    for (src_len, tgt_len) in [(4, 2), (2, 3)] {
        let pair = Pair {
            src: vec![5; src_len],
            tgt: vec![6; tgt_len],
        };
        let pairs = vec![pair; 12];
        let batches = batches_by_length(&pairs, 16, &mut StdRng::seed_from_u64(0));
        let sizes: Vec<usize> = batches.iter().map(Batch::len).collect();
        assert_eq!(sizes, [4, 4, 4], "source {src_len}, target {tgt_len}");
        assert!(batches
            .iter()
            .all(|b| b.padded_src_tokens().max(b.padded_tgt_tokens()) == 16));
        // one slot less and a fourth pair no longer fits
        let smaller = batches_by_length(&pairs, 15, &mut StdRng::seed_from_u64(0));
        assert!(
            smaller.iter().all(|b| b.len() == 3),
            "{:?}",
            smaller.iter().map(Batch::len).collect::<Vec<_>>()
        );
    }
    let none = Batch::from_pairs(&[], &[]);
    assert!(none.is_empty() && none.src.is_empty() && none.padded_tokens() == 0);
    let one = Batch::from_pairs(
        &[Pair {
            src: vec![5],
            tgt: vec![],
        }],
        &[0],
    );
    assert!(!one.is_empty());
}
