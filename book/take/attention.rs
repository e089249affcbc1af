use my_crate::attention::scaled_dot_product_attention;
use nalgebra::dmatrix;

fn main() {
    // One query, two keys equally similar to it: the output is the mean of the values.
    let q = dmatrix![1.0, 0.0]; // (n, d_k) = (1, 2)
    let k = dmatrix![0.0, 1.0; 0.0, -1.0]; // (m, d_k) = (2, 2)
    let v = dmatrix![2.0; 4.0]; // (m, d_v) = (2, 1)
    let a = scaled_dot_product_attention(&q, &k, &v, None);
    println!("weights {:?}, output {:?}", a.weights.as_slice(), a.output.as_slice());
}
// Output:
// weights [0.5, 0.5], output [3.0]
