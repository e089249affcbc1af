use my_crate::embedding::Embedding;
use my_crate::softmax::log_softmax_rows;
use rand::{rngs::StdRng, SeedableRng};

fn main() {
    // Vocabulary 10, d_model 4: embedding multiplies the rows of E by sqrt(4) = 2.
    let e = Embedding::<f64>::new(10, 4, &mut StdRng::seed_from_u64(0));
    let x = e.embed(&[3, 1, 4]);
    let scaled = x.row(0) == e.weight.row(3) * 2.0;
    println!("embedded {:?}, row 0 is 2 E[3]: {scaled}", x.shape());
    // The generator: the same E back to the vocabulary, then log-softmax.
    let log_probs = log_softmax_rows(&e.logits(&x));
    let total: f64 = log_probs.row(0).iter().map(|l| l.exp()).sum();
    println!("log-probabilities {:?}, row 0 sums to {total:.6}", log_probs.shape());
}
// Output:
// embedded (3, 4), row 0 is 2 E[3]: true
// log-probabilities (3, 10), row 0 sums to 1.000000
