//! Training data for the book's own model (§5.1, scaled down): three synthetic tasks.
//!
//! The paper trains on WMT 2014 English-German (4.5 million sentence pairs) and
//! English-French (36 million). A book that trains its model on two CPU cores needs something
//! smaller whose answers are known exactly, so that "the model learned it" is a measurement
//! (exact match on held-out sentences) rather than an impression. Three tasks, each a
//! deterministic function from a source sequence to a target sequence:
//!
//! - **`copy`**: the target is the source. The alphabet is the 20 letters `a` to `t`, each a
//!   token; lengths are uniform in 3..=20. Attention from the decoder to the encoder is the
//!   diagonal.
//! - **`reverse`**: the target is the source reversed, same alphabet and lengths. Attention is
//!   the anti-diagonal.
//! - **`translate`**: a small English-like language translated into an invented one, with word
//!   reordering (subject-object-verb order, adjectives after their noun, postpositions) and
//!   agreement (determiners and adjectives agree with the noun's gender, which the source does
//!   not show; verbs agree with their subject's number). Attention has to find, for each
//!   target word, a source word that may be far away.
//!
//! # The translate grammar
//!
//! Source sentences (brackets: optional; `|`: choice):
//!
//! ```text
//! Sentence  := Clause [ "and" Clause ]
//! Clause    := NounPhrase Vt NounPhrase          transitive: the verb agrees with the subject
//!            | NounPhrase Vi [ Prep NounCore ]   intransitive, with an optional adverbial phrase
//! NounPhrase:= NounCore [ Prep NounCore | "that" Vt NounCore | "that" Vi ]
//! NounCore  := Det [ Adj [ Adj ] ] Noun          "a" only singular, "some" only plural
//! ```
//!
//! A relative clause (`that ...`) agrees in number with the noun it follows. The parse is
//! unique, so the translation is a function of the source. The target mirrors it:
//!
//! ```text
//! Clause'    := NounPhrase' NounPhrase' Vt'      subject, object, verb (SOV)
//!             | NounPhrase' [ NounCore' Post ] Vi'
//! NounPhrase':= NounCore' [ NounCore' Post | "ke" NounCore' Vt' | "ke" Vi' ]
//! NounCore'  := Det' Noun' [ Adj' [ Adj' ] ]     adjectives after the noun, same order
//! Sentence'  := Clause' [ "i" Clause' ]
//! ```
//!
//! `Det'` is one of eight words (definite or indefinite, singular or plural, masculine or
//! feminine), an adjective has a masculine and a feminine form, a verb a singular and a plural
//! form. Each source token becomes exactly one target token, so both sides have the same
//! length. Example: `the big dog sees a small cat` becomes `ta hund grando eka mirel pikke vidat`.
//! The word lists are [`NOUNS`], [`ADJECTIVES`], [`TRANSITIVE_VERBS`], [`INTRANSITIVE_VERBS`],
//! [`PREPOSITIONS`] and the determiner tables; 88 source words and 83 target words.
//!
//! # Splits
//!
//! Every task has a fixed training set and a held-out set drawn from the seed, with no pair in
//! both and no duplicates. For `translate` the held-out sentences are *novel*: each contains at
//! least one (adjective, noun) combination that never occurs in training, namely noun number i
//! of [`NOUNS`] with adjective number i mod 10 of [`ADJECTIVES`] (so no training sentence
//! mentions a big dog, a small cat, a red bird ...; see [`novel_combinations`]). Every word of
//! those sentences does occur in training, in other combinations. Exact match on the held-out
//! set therefore measures composition, not memory.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// The padding token: fills rows of a batch past the end of a sequence.
pub const PAD: usize = 0;
/// The beginning-of-sentence token: the decoder's first input.
pub const BOS: usize = 1;
/// The end-of-sentence token: the decoder's last output.
pub const EOS: usize = 2;

const SPECIALS: [&str; 3] = ["<pad>", "<s>", "</s>"];

/// What went wrong when building a task or encoding a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskError {
    /// A word of a sentence is not in the vocabulary; `position` counts words from 0.
    UnknownWord { word: String, position: usize },
    /// [`Task::by_name`] was given a name that is not one of [`Task::names`].
    UnknownTask { name: String },
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::UnknownWord { word, position } => {
                write!(f, "unknown word `{word}` at position {position}")
            }
            TaskError::UnknownTask { name } => write!(
                f,
                "unknown task `{name}`; the tasks are: {}",
                Task::names().join(", ")
            ),
        }
    }
}

impl std::error::Error for TaskError {}

/// One vocabulary for source and target (the model ties its embeddings, §3.4). Ids 0, 1, 2 are
/// `<pad>`, `<s>` and `</s>`; the task's words follow.
#[derive(Clone, Debug)]
pub struct Vocab {
    words: Vec<String>,
    ids: HashMap<String, usize>,
}

impl Vocab {
    /// A vocabulary of the three special tokens followed by `words`, in order.
    ///
    /// # Panics
    /// If a word repeats, contains whitespace, or is empty.
    fn new(words: &[&str]) -> Vocab {
        let mut vocab = Vocab {
            words: Vec::new(),
            ids: HashMap::new(),
        };
        for w in SPECIALS.iter().chain(words) {
            vocab.push(w);
        }
        vocab
    }

    fn push(&mut self, word: &str) -> usize {
        assert!(
            !word.is_empty() && !word.contains(char::is_whitespace),
            "vocabulary word `{word}` is empty or contains whitespace"
        );
        let id = self.words.len();
        let previous = self.ids.insert(word.to_string(), id);
        assert!(previous.is_none(), "vocabulary word `{word}` repeats");
        self.words.push(word.to_string());
        id
    }

    /// The number of tokens, the three specials included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Never true: a vocabulary holds at least the three specials.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The id of `word`, if it is in the vocabulary (`"<pad>"` is 0, and so on).
    pub fn id(&self, word: &str) -> Option<usize> {
        self.ids.get(word).copied()
    }

    /// The word of `id`.
    ///
    /// # Panics
    /// If `id >= self.len()`.
    pub fn word(&self, id: usize) -> &str {
        assert!(
            id < self.words.len(),
            "token id {id} is outside the vocabulary of {} tokens",
            self.words.len()
        );
        &self.words[id]
    }

    /// The ids of the whitespace-separated words of `sentence` (no `<s>` or `</s>` added).
    ///
    /// # Errors
    /// [`TaskError::UnknownWord`] for the first word not in the vocabulary, with its position.
    ///
    /// # Example
    /// ```
    /// use aiayn::train::tasks::{Task, TaskError};
    /// let task = Task::by_name("copy", 1).unwrap();
    /// let ids = task.vocab.encode("c a b").unwrap();
    /// assert_eq!(task.vocab.decode(&ids), "c a b");
    /// assert_eq!(
    ///     task.vocab.encode("a zz b"),
    ///     Err(TaskError::UnknownWord { word: "zz".into(), position: 1 })
    /// );
    /// ```
    pub fn encode(&self, sentence: &str) -> Result<Vec<usize>, TaskError> {
        sentence
            .split_whitespace()
            .enumerate()
            .map(|(position, word)| {
                self.id(word).ok_or_else(|| TaskError::UnknownWord {
                    word: word.to_string(),
                    position,
                })
            })
            .collect()
    }

    /// The words of `ids` joined by single spaces, with `<pad>`, `<s>` and `</s>` left out.
    ///
    /// # Panics
    /// If an id is outside the vocabulary.
    pub fn decode(&self, ids: &[usize]) -> String {
        ids.iter()
            .filter(|&&id| id != PAD && id != BOS && id != EOS)
            .map(|&id| self.word(id))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A source sequence and its target, as token ids, without `<s>` or `</s>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pair {
    pub src: Vec<usize>,
    pub tgt: Vec<usize>,
}

/// A synthetic task: its vocabulary and its two fixed splits.
#[derive(Clone, Debug)]
pub struct Task {
    /// `"copy"`, `"reverse"` or `"translate"`.
    pub name: String,
    pub vocab: Vocab,
    pub train: Vec<Pair>,
    pub held_out: Vec<Pair>,
    /// The shortest source the generator produces (in tokens).
    pub min_len: usize,
    /// The longest source the generator produces (in tokens).
    pub max_len: usize,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Copy,
    Reverse,
    Translate(Box<Lexicon>),
}

/// The letters of `copy` and `reverse`.
pub const ALPHABET: [&str; 20] = [
    "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s",
    "t",
];
/// Training pairs of `copy` and `reverse`.
pub const SEQUENCE_TRAIN: usize = 20_000;
/// Held-out pairs of `copy` and `reverse`.
pub const SEQUENCE_HELD_OUT: usize = 500;
/// Training pairs of `translate`.
pub const TRANSLATE_TRAIN: usize = 30_000;
/// Held-out pairs of `translate`.
pub const TRANSLATE_HELD_OUT: usize = 1_000;
/// The longest sentence `translate` generates, in tokens (the grammar allows up to 43).
pub const TRANSLATE_MAX_LEN: usize = 30;

impl Task {
    /// The task called `name`, its splits drawn from `seed`. The same name and seed always give
    /// the same task.
    ///
    /// # Errors
    /// [`TaskError::UnknownTask`] if `name` is not one of [`Task::names`].
    ///
    /// # Example
    /// ```
    /// use aiayn::train::tasks::Task;
    /// let task = Task::by_name("reverse", 7).unwrap();
    /// let pair = &task.train[0];
    /// let reversed: Vec<usize> = pair.src.iter().rev().copied().collect();
    /// assert_eq!(pair.tgt, reversed);
    /// assert!(Task::by_name("sort", 7).unwrap_err().to_string().contains("copy, reverse"));
    /// ```
    pub fn by_name(name: &str, seed: u64) -> Result<Task, TaskError> {
        let mut rng = StdRng::seed_from_u64(seed);
        match name {
            "copy" => Ok(sequence_task(name, Kind::Copy, &mut rng)),
            "reverse" => Ok(sequence_task(name, Kind::Reverse, &mut rng)),
            "translate" => Ok(translate_task(&mut rng)),
            _ => Err(TaskError::UnknownTask {
                name: name.to_string(),
            }),
        }
    }

    /// The names [`Task::by_name`] accepts.
    pub fn names() -> &'static [&'static str] {
        &["copy", "reverse", "translate"]
    }

    /// The target the task assigns to `src`, or `None` if `src` is not in the task's source
    /// language. For `copy` and `reverse` that language is every non-empty sequence of
    /// [`ALPHABET`] letters (any length, so that a model can be tried on lengths it never saw);
    /// for `translate` it is every sentence of the grammar in the module documentation (up to
    /// 43 tokens, beyond the generator's [`TRANSLATE_MAX_LEN`]).
    ///
    /// # Example
    /// ```
    /// use aiayn::train::tasks::Task;
    /// let task = Task::by_name("translate", 1).unwrap();
    /// let src = task.vocab.encode("the dogs sleep").unwrap();
    /// let tgt = task.translate_reference(&src).unwrap();
    /// assert_eq!(task.vocab.decode(&tgt), "tas hund dormant");
    /// let bad = task.vocab.encode("the dogs sleeps").unwrap(); // number disagrees
    /// assert_eq!(task.translate_reference(&bad), None);
    /// ```
    pub fn translate_reference(&self, src: &[usize]) -> Option<Vec<usize>> {
        match &self.kind {
            Kind::Copy | Kind::Reverse => {
                let letters = SPECIALS.len()..SPECIALS.len() + ALPHABET.len();
                if src.is_empty() || !src.iter().all(|id| letters.contains(id)) {
                    return None;
                }
                let mut tgt = src.to_vec();
                if matches!(self.kind, Kind::Reverse) {
                    tgt.reverse();
                }
                Some(tgt)
            }
            Kind::Translate(lex) => {
                let sentence = Parser { lex, src, at: 0 }.sentence()?;
                Some(lex.target(&sentence))
            }
        }
    }
}

/// `copy` or `reverse`: held-out sequences first, then training sequences that are neither
/// held out nor repeated.
fn sequence_task(name: &str, kind: Kind, rng: &mut StdRng) -> Task {
    let vocab = Vocab::new(&ALPHABET);
    let (min_len, max_len) = (3, 20);
    let first = SPECIALS.len();
    let draw = |rng: &mut StdRng| -> Vec<usize> {
        let n = rng.random_range(min_len..=max_len);
        (0..n)
            .map(|_| first + rng.random_range(0..ALPHABET.len()))
            .collect()
    };
    let mut seen = HashSet::new();
    let mut held_out_src = Vec::with_capacity(SEQUENCE_HELD_OUT);
    while held_out_src.len() < SEQUENCE_HELD_OUT {
        let s = draw(rng);
        if seen.insert(s.clone()) {
            held_out_src.push(s);
        }
    }
    let mut train_src = Vec::with_capacity(SEQUENCE_TRAIN);
    while train_src.len() < SEQUENCE_TRAIN {
        let s = draw(rng);
        if seen.insert(s.clone()) {
            train_src.push(s);
        }
    }
    let reverse = matches!(kind, Kind::Reverse);
    let to_pair = |src: Vec<usize>| {
        let mut tgt = src.clone();
        if reverse {
            tgt.reverse();
        }
        Pair { src, tgt }
    };
    Task {
        name: name.to_string(),
        vocab,
        train: train_src.into_iter().map(to_pair).collect(),
        held_out: held_out_src.into_iter().map(to_pair).collect(),
        min_len,
        max_len,
        kind,
    }
}

// ANCHOR: lexicon
/// A noun's grammatical gender in the target language (not visible in the source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gender {
    Masculine,
    Feminine,
}

use Gender::{Feminine as F, Masculine as M};

/// Nouns: source singular, source plural, target (one form; number shows on the determiner),
/// target gender.
pub const NOUNS: [(&str, &str, &str, Gender); 20] = [
    ("dog", "dogs", "hund", M),
    ("cat", "cats", "mirel", F),
    ("bird", "birds", "avik", F),
    ("horse", "horses", "taldo", M),
    ("farmer", "farmers", "gorun", M),
    ("child", "children", "pelin", F),
    ("teacher", "teachers", "dovar", M),
    ("girl", "girls", "nessa", F),
    ("boy", "boys", "bruk", M),
    ("king", "kings", "rodan", M),
    ("queen", "queens", "sirel", F),
    ("wolf", "wolves", "vulko", M),
    ("baker", "bakers", "panet", F),
    ("sailor", "sailors", "marut", M),
    ("friend", "friends", "amik", F),
    ("ball", "balls", "bolu", F),
    ("book", "books", "libra", M),
    ("apple", "apples", "pomel", F),
    ("house", "houses", "domo", M),
    ("boat", "boats", "navis", F),
];

/// Adjectives: source, target masculine, target feminine.
pub const ADJECTIVES: [(&str, &str, &str); 10] = [
    ("big", "grando", "grande"),
    ("small", "pikko", "pikke"),
    ("red", "roso", "rose"),
    ("old", "veto", "vete"),
    ("young", "juno", "june"),
    ("happy", "feliso", "felise"),
    ("quiet", "kalmo", "kalme"),
    ("brave", "forto", "forte"),
    ("green", "verdo", "verde"),
    ("tired", "lasso", "lasse"),
];

/// Transitive verbs: source singular, source plural, target singular, target plural.
pub const TRANSITIVE_VERBS: [(&str, &str, &str, &str); 10] = [
    ("sees", "see", "vidat", "vidant"),
    ("likes", "like", "amat", "amant"),
    ("follows", "follow", "sekat", "sekant"),
    ("finds", "find", "trovat", "trovant"),
    ("helps", "help", "juvat", "juvant"),
    ("carries", "carry", "portat", "portant"),
    ("calls", "call", "klamat", "klamant"),
    ("watches", "watch", "spektat", "spektant"),
    ("knows", "know", "konat", "konant"),
    ("pushes", "push", "pulsat", "pulsant"),
];

/// Intransitive verbs: source singular, source plural, target singular, target plural.
pub const INTRANSITIVE_VERBS: [(&str, &str, &str, &str); 5] = [
    ("sleeps", "sleep", "dormat", "dormant"),
    ("runs", "run", "kurat", "kurant"),
    ("sings", "sing", "kantat", "kantant"),
    ("waits", "wait", "restat", "restant"),
    ("laughs", "laugh", "ridat", "ridant"),
];

/// Prepositions (before their noun phrase in the source) and the target postpositions (after).
pub const PREPOSITIONS: [(&str, &str); 3] = [("with", "kun"), ("near", "apud"), ("behind", "pos")];

/// Source determiners: definite (either number), indefinite singular, indefinite plural.
pub const SOURCE_DETERMINERS: [&str; 3] = ["the", "a", "some"];

/// Target determiners, indexed `[definite as usize][plural as usize][feminine as usize]`:
/// indefinite `ek eka eks ekas`, definite `ta te tas tes`.
pub const TARGET_DETERMINERS: [[[&str; 2]; 2]; 2] = [
    [["ek", "eka"], ["eks", "ekas"]],
    [["ta", "te"], ["tas", "tes"]],
];

/// Relative pronoun and conjunction: source and target.
pub const THAT: (&str, &str) = ("that", "ke");
pub const AND: (&str, &str) = ("and", "i");
// ANCHOR_END: lexicon

/// The (adjective, noun) combinations (source words, singular nouns) that occur only in the
/// held-out set of `translate`: noun i of [`NOUNS`] with adjective i mod 10 of [`ADJECTIVES`].
pub fn novel_combinations() -> Vec<(&'static str, &'static str)> {
    NOUNS
        .iter()
        .enumerate()
        .map(|(i, n)| (ADJECTIVES[novel_adjective(i)].0, n.0))
        .collect()
}

fn novel_adjective(noun: usize) -> usize {
    noun % ADJECTIVES.len()
}

/// What a source token is, for the parser.
#[derive(Clone, Copy, Debug)]
enum Word {
    Det(Det),
    Noun { noun: usize, plural: bool },
    Adj(usize),
    Vt { verb: usize, plural: bool },
    Vi { verb: usize, plural: bool },
    Prep(usize),
    That,
    And,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Det {
    The,
    A,
    Some,
}

/// The translate vocabulary's ids, by role.
#[derive(Clone, Debug)]
struct Lexicon {
    /// Indexed by vocabulary id: the role of a source word, `None` for targets and specials.
    role: Vec<Option<Word>>,
    src_det: [usize; 3],
    src_noun: Vec<[usize; 2]>,
    src_adj: Vec<usize>,
    src_vt: Vec<[usize; 2]>,
    src_vi: Vec<[usize; 2]>,
    src_prep: Vec<usize>,
    src_that: usize,
    src_and: usize,
    tgt_det: [[[usize; 2]; 2]; 2],
    tgt_noun: Vec<usize>,
    gender: Vec<Gender>,
    tgt_adj: Vec<[usize; 2]>,
    tgt_vt: Vec<[usize; 2]>,
    tgt_vi: Vec<[usize; 2]>,
    tgt_prep: Vec<usize>,
    tgt_that: usize,
    tgt_and: usize,
}

impl Lexicon {
    fn build() -> (Vocab, Lexicon) {
        let mut v = Vocab::new(&[]);
        let mut role = vec![None; v.len()];
        let mut add = |v: &mut Vocab, word: &str, r: Option<Word>| {
            let id = v.push(word);
            role.push(r);
            id
        };
        let dets = [Det::The, Det::A, Det::Some];
        let src_det =
            [0, 1, 2].map(|i| add(&mut v, SOURCE_DETERMINERS[i], Some(Word::Det(dets[i]))));
        let src_noun = (0..NOUNS.len())
            .map(|noun| {
                let (sg, pl, _, _) = NOUNS[noun];
                [(sg, false), (pl, true)]
                    .map(|(w, plural)| add(&mut v, w, Some(Word::Noun { noun, plural })))
            })
            .collect();
        let src_adj = (0..ADJECTIVES.len())
            .map(|a| add(&mut v, ADJECTIVES[a].0, Some(Word::Adj(a))))
            .collect();
        let src_vt = (0..TRANSITIVE_VERBS.len())
            .map(|verb| {
                let (sg, pl, _, _) = TRANSITIVE_VERBS[verb];
                [(sg, false), (pl, true)]
                    .map(|(w, plural)| add(&mut v, w, Some(Word::Vt { verb, plural })))
            })
            .collect();
        let src_vi = (0..INTRANSITIVE_VERBS.len())
            .map(|verb| {
                let (sg, pl, _, _) = INTRANSITIVE_VERBS[verb];
                [(sg, false), (pl, true)]
                    .map(|(w, plural)| add(&mut v, w, Some(Word::Vi { verb, plural })))
            })
            .collect();
        let src_prep = (0..PREPOSITIONS.len())
            .map(|p| add(&mut v, PREPOSITIONS[p].0, Some(Word::Prep(p))))
            .collect();
        let src_that = add(&mut v, THAT.0, Some(Word::That));
        let src_and = add(&mut v, AND.0, Some(Word::And));

        let tgt_det = TARGET_DETERMINERS
            .map(|by_number| by_number.map(|by_gender| by_gender.map(|w| add(&mut v, w, None))));
        let tgt_noun = NOUNS.iter().map(|n| add(&mut v, n.2, None)).collect();
        let gender = NOUNS.iter().map(|n| n.3).collect();
        let tgt_adj = ADJECTIVES
            .iter()
            .map(|a| [add(&mut v, a.1, None), add(&mut v, a.2, None)])
            .collect();
        let tgt_vt = TRANSITIVE_VERBS
            .iter()
            .map(|t| [add(&mut v, t.2, None), add(&mut v, t.3, None)])
            .collect();
        let tgt_vi = INTRANSITIVE_VERBS
            .iter()
            .map(|t| [add(&mut v, t.2, None), add(&mut v, t.3, None)])
            .collect();
        let tgt_prep = PREPOSITIONS
            .iter()
            .map(|p| add(&mut v, p.1, None))
            .collect();
        let tgt_that = add(&mut v, THAT.1, None);
        let tgt_and = add(&mut v, AND.1, None);
        let lex = Lexicon {
            role,
            src_det,
            src_noun,
            src_adj,
            src_vt,
            src_vi,
            src_prep,
            src_that,
            src_and,
            tgt_det,
            tgt_noun,
            gender,
            tgt_adj,
            tgt_vt,
            tgt_vi,
            tgt_prep,
            tgt_that,
            tgt_and,
        };
        (v, lex)
    }
}

// The sentence structure shared by the generator, the parser and both renderings.

#[derive(Clone, Debug, PartialEq, Eq)]
struct NounCore {
    det: Det,
    adjs: Vec<usize>,
    noun: usize,
    plural: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Attachment {
    None,
    Prep(usize, NounCore),
    RelTransitive(usize, NounCore),
    RelIntransitive(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct NounPhrase {
    core: NounCore,
    attachment: Attachment,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Predicate {
    Transitive(usize, NounPhrase),
    Intransitive(usize, Option<(usize, NounCore)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Clause {
    subject: NounPhrase,
    predicate: Predicate,
}

type Sentence = Vec<Clause>;

impl Lexicon {
    fn source(&self, s: &Sentence) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, clause) in s.iter().enumerate() {
            if i > 0 {
                out.push(self.src_and);
            }
            let number = clause.subject.core.plural as usize;
            self.source_phrase(&clause.subject, &mut out);
            match &clause.predicate {
                Predicate::Transitive(verb, object) => {
                    out.push(self.src_vt[*verb][number]);
                    self.source_phrase(object, &mut out);
                }
                Predicate::Intransitive(verb, pp) => {
                    out.push(self.src_vi[*verb][number]);
                    if let Some((prep, np)) = pp {
                        out.push(self.src_prep[*prep]);
                        self.source_core(np, &mut out);
                    }
                }
            }
        }
        out
    }

    fn source_phrase(&self, np: &NounPhrase, out: &mut Vec<usize>) {
        self.source_core(&np.core, out);
        let number = np.core.plural as usize;
        match &np.attachment {
            Attachment::None => {}
            Attachment::Prep(prep, core) => {
                out.push(self.src_prep[*prep]);
                self.source_core(core, out);
            }
            Attachment::RelTransitive(verb, object) => {
                out.extend([self.src_that, self.src_vt[*verb][number]]);
                self.source_core(object, out);
            }
            Attachment::RelIntransitive(verb) => {
                out.extend([self.src_that, self.src_vi[*verb][number]]);
            }
        }
    }

    fn source_core(&self, np: &NounCore, out: &mut Vec<usize>) {
        let det = match np.det {
            Det::The => 0,
            Det::A => 1,
            Det::Some => 2,
        };
        out.push(self.src_det[det]);
        out.extend(np.adjs.iter().map(|&a| self.src_adj[a]));
        out.push(self.src_noun[np.noun][np.plural as usize]);
    }

    fn target(&self, s: &Sentence) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, clause) in s.iter().enumerate() {
            if i > 0 {
                out.push(self.tgt_and);
            }
            let number = clause.subject.core.plural as usize;
            self.target_phrase(&clause.subject, &mut out);
            match &clause.predicate {
                Predicate::Transitive(verb, object) => {
                    self.target_phrase(object, &mut out);
                    out.push(self.tgt_vt[*verb][number]);
                }
                Predicate::Intransitive(verb, pp) => {
                    if let Some((prep, np)) = pp {
                        self.target_core(np, &mut out);
                        out.push(self.tgt_prep[*prep]);
                    }
                    out.push(self.tgt_vi[*verb][number]);
                }
            }
        }
        out
    }

    fn target_phrase(&self, np: &NounPhrase, out: &mut Vec<usize>) {
        self.target_core(&np.core, out);
        let number = np.core.plural as usize;
        match &np.attachment {
            Attachment::None => {}
            Attachment::Prep(prep, core) => {
                self.target_core(core, out);
                out.push(self.tgt_prep[*prep]);
            }
            Attachment::RelTransitive(verb, object) => {
                out.push(self.tgt_that);
                self.target_core(object, out);
                out.push(self.tgt_vt[*verb][number]);
            }
            Attachment::RelIntransitive(verb) => {
                out.extend([self.tgt_that, self.tgt_vi[*verb][number]]);
            }
        }
    }

    fn target_core(&self, np: &NounCore, out: &mut Vec<usize>) {
        let gender = (self.gender[np.noun] == Gender::Feminine) as usize;
        let definite = (np.det == Det::The) as usize;
        out.push(self.tgt_det[definite][np.plural as usize][gender]);
        out.push(self.tgt_noun[np.noun]);
        out.extend(np.adjs.iter().map(|&a| self.tgt_adj[a][gender]));
    }
}

/// A recursive-descent parser of the source grammar; every method returns `None` on the first
/// token that does not fit.
struct Parser<'a> {
    lex: &'a Lexicon,
    src: &'a [usize],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Word> {
        let id = *self.src.get(self.at)?;
        *self.lex.role.get(id)?
    }

    fn next(&mut self) -> Option<Word> {
        let w = self.peek()?;
        self.at += 1;
        Some(w)
    }

    fn sentence(mut self) -> Option<Sentence> {
        let mut clauses = vec![self.clause()?];
        if matches!(self.peek(), Some(Word::And)) {
            self.at += 1;
            clauses.push(self.clause()?);
        }
        (self.at == self.src.len()).then_some(clauses)
    }

    fn clause(&mut self) -> Option<Clause> {
        let subject = self.phrase()?;
        let predicate = match self.next()? {
            Word::Vt { verb, plural } if plural == subject.core.plural => {
                Predicate::Transitive(verb, self.phrase()?)
            }
            Word::Vi { verb, plural } if plural == subject.core.plural => {
                let pp = if let Some(Word::Prep(prep)) = self.peek() {
                    self.at += 1;
                    Some((prep, self.core()?))
                } else {
                    None
                };
                Predicate::Intransitive(verb, pp)
            }
            _ => return None,
        };
        Some(Clause { subject, predicate })
    }

    fn phrase(&mut self) -> Option<NounPhrase> {
        let core = self.core()?;
        let attachment = match self.peek() {
            Some(Word::Prep(prep)) => {
                self.at += 1;
                Attachment::Prep(prep, self.core()?)
            }
            Some(Word::That) => {
                self.at += 1;
                match self.next()? {
                    Word::Vt { verb, plural } if plural == core.plural => {
                        Attachment::RelTransitive(verb, self.core()?)
                    }
                    Word::Vi { verb, plural } if plural == core.plural => {
                        Attachment::RelIntransitive(verb)
                    }
                    _ => return None,
                }
            }
            _ => Attachment::None,
        };
        Some(NounPhrase { core, attachment })
    }

    fn core(&mut self) -> Option<NounCore> {
        let Word::Det(det) = self.next()? else {
            return None;
        };
        let mut adjs = Vec::new();
        while let Some(Word::Adj(a)) = self.peek() {
            if adjs.len() == 2 {
                return None;
            }
            adjs.push(a);
            self.at += 1;
        }
        let Word::Noun { noun, plural } = self.next()? else {
            return None;
        };
        let agrees = match det {
            Det::The => true,
            Det::A => !plural,
            Det::Some => plural,
        };
        agrees.then_some(NounCore {
            det,
            adjs,
            noun,
            plural,
        })
    }
}

// The generator. Probabilities favour short sentences: most noun phrases are bare, most
// sentences are one clause.

fn random_core(rng: &mut StdRng) -> NounCore {
    let plural = rng.random_bool(0.5);
    let det = match (rng.random_bool(0.6), plural) {
        (true, _) => Det::The,
        (false, false) => Det::A,
        (false, true) => Det::Some,
    };
    let n_adjs = match rng.random_range(0..20) {
        0..10 => 0,
        10..17 => 1,
        _ => 2,
    };
    let mut adjs: Vec<usize> = Vec::with_capacity(n_adjs);
    while adjs.len() < n_adjs {
        let a = rng.random_range(0..ADJECTIVES.len());
        if !adjs.contains(&a) {
            adjs.push(a);
        }
    }
    NounCore {
        det,
        adjs,
        noun: rng.random_range(0..NOUNS.len()),
        plural,
    }
}

fn random_phrase(rng: &mut StdRng) -> NounPhrase {
    let core = random_core(rng);
    let attachment = match rng.random_range(0..20) {
        0..14 => Attachment::None,
        14..17 => Attachment::Prep(rng.random_range(0..PREPOSITIONS.len()), random_core(rng)),
        17..19 => Attachment::RelTransitive(
            rng.random_range(0..TRANSITIVE_VERBS.len()),
            random_core(rng),
        ),
        _ => Attachment::RelIntransitive(rng.random_range(0..INTRANSITIVE_VERBS.len())),
    };
    NounPhrase { core, attachment }
}

fn random_clause(rng: &mut StdRng) -> Clause {
    let subject = random_phrase(rng);
    let predicate = if rng.random_bool(0.7) {
        Predicate::Transitive(
            rng.random_range(0..TRANSITIVE_VERBS.len()),
            random_phrase(rng),
        )
    } else {
        let pp = rng
            .random_bool(0.4)
            .then(|| (rng.random_range(0..PREPOSITIONS.len()), random_core(rng)));
        Predicate::Intransitive(rng.random_range(0..INTRANSITIVE_VERBS.len()), pp)
    };
    Clause { subject, predicate }
}

fn random_sentence(rng: &mut StdRng) -> Sentence {
    let mut s = vec![random_clause(rng)];
    if rng.random_bool(0.2) {
        s.push(random_clause(rng));
    }
    s
}

/// Does any noun of `s` carry its held-out adjective?
fn is_novel(s: &Sentence) -> bool {
    let core_novel = |c: &NounCore| c.adjs.contains(&novel_adjective(c.noun));
    let phrase_novel = |p: &NounPhrase| {
        core_novel(&p.core)
            || match &p.attachment {
                Attachment::Prep(_, c) | Attachment::RelTransitive(_, c) => core_novel(c),
                Attachment::None | Attachment::RelIntransitive(_) => false,
            }
    };
    s.iter().any(|clause| {
        phrase_novel(&clause.subject)
            || match &clause.predicate {
                Predicate::Transitive(_, object) => phrase_novel(object),
                Predicate::Intransitive(_, Some((_, c))) => core_novel(c),
                Predicate::Intransitive(_, None) => false,
            }
    })
}

/// `translate`: sentences are drawn until both splits are full; a sentence with a novel
/// combination goes to the held-out set, any other to training, repeats and sentences longer
/// than [`TRANSLATE_MAX_LEN`] are dropped.
fn translate_task(rng: &mut StdRng) -> Task {
    let (vocab, lex) = Lexicon::build();
    let mut seen = HashSet::new();
    let mut train = Vec::with_capacity(TRANSLATE_TRAIN);
    let mut held_out = Vec::with_capacity(TRANSLATE_HELD_OUT);
    while train.len() < TRANSLATE_TRAIN || held_out.len() < TRANSLATE_HELD_OUT {
        let s = random_sentence(rng);
        let novel = is_novel(&s);
        let split = if novel { &mut held_out } else { &mut train };
        let quota = if novel {
            TRANSLATE_HELD_OUT
        } else {
            TRANSLATE_TRAIN
        };
        if split.len() >= quota {
            continue;
        }
        let src = lex.source(&s);
        if src.len() > TRANSLATE_MAX_LEN || !seen.insert(src.clone()) {
            continue;
        }
        let tgt = lex.target(&s);
        split.push(Pair { src, tgt });
    }
    Task {
        name: "translate".to_string(),
        vocab,
        train,
        held_out,
        min_len: 3,
        max_len: TRANSLATE_MAX_LEN,
        kind: Kind::Translate(Box::new(lex)),
    }
}
