use my_crate::bleu::corpus_bleu;

fn main() {
    // Precisions 4/5, 3/4, 2/3, 1/2 and no brevity penalty: BLEU = 100 (1/5)^(1/4).
    let hypotheses = ["the cat sat down today"];
    let references = ["the cat sat down ."];
    println!("{}", corpus_bleu(&hypotheses, &references).unwrap());
}
// Output:
// BLEU = 66.87 80.0/75.0/66.7/50.0 (BP = 1.000 ratio = 1.000 hyp_len = 5 ref_len = 5)
