use my_crate::mask::Mask;
use nalgebra::DMatrix;

fn main() {
    // Query i sees keys 0..=i (causal), and no query sees key 2 (padding).
    let mask = Mask::causal(3).and(&Mask::padding(3, &[false, false, true]));
    let mut scores = DMatrix::<f64>::zeros(3, 3);
    mask.apply(&mut scores); // forbidden pairs -> -inf, so softmax gives them weight 0
    for row in scores.row_iter() {
        println!("{:?}", row.iter().collect::<Vec<_>>());
    }
}
// Output:
// [0.0, -inf, -inf]
// [0.0, 0.0, -inf]
// [0.0, 0.0, -inf]
