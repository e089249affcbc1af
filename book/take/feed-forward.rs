use my_crate::feed_forward::FeedForward;
use nalgebra::{dmatrix, RowDVector};

fn main() {
    // d_model = 1, d_ff = 2: max(0, x) + max(0, -x) + 1/2, that is |x| + 1/2.
    let ffn = FeedForward {
        w_1: dmatrix![1.0, -1.0],
        b_1: RowDVector::zeros(2),
        w_2: dmatrix![1.0; 1.0],
        b_2: RowDVector::from_element(1, 0.5),
    };
    let x = dmatrix![-2.0; 0.5; 3.0]; // 3 positions of width 1
    println!("{:?}", ffn.forward(&x).as_slice());
}
// Output:
// [2.5, 1.0, 3.5]
