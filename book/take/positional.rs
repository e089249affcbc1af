use my_crate::positional::sinusoidal;

fn main() {
    let pe = sinusoidal::<f64>(50, 16); // 50 positions, d_model = 16
    // Position 0: sin(0) = 0 in the even columns, cos(0) = 1 in the odd ones.
    println!("PE(0) starts {:?}", pe.row(0).iter().take(4).collect::<Vec<_>>());
    // Column 0 has wavelength 2 pi: PE(pos, 0) = sin(pos).
    println!("PE(1, 0) = {:.6}, PE(2, 0) = {:.6}", pe[(1, 0)], pe[(2, 0)]);
}
// Output:
// PE(0) starts [0.0, 1.0, 0.0, 1.0]
// PE(1, 0) = 0.841471, PE(2, 0) = 0.909297
