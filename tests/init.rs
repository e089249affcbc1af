//! Initialisation (not stated in the paper): Xavier-uniform matrices, variance 2 / (fan_in +
//! fan_out), entries within sqrt(6 / (fan_in + fan_out)).

use aiayn::attention::sample_moments;
use aiayn::init::xavier_uniform;
use rand::{rngs::StdRng, SeedableRng};

#[test]
fn xavier_uniform_has_the_glorot_bound_and_variance() {
    let mut rng = StdRng::seed_from_u64(7);
    for (fan_in, fan_out) in [(64, 32), (16, 128), (100, 100)] {
        let w = xavier_uniform::<f64>(fan_in, fan_out, &mut rng);
        assert_eq!(w.shape(), (fan_in, fan_out));
        let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
        assert!(
            w.iter().all(|x| x.abs() <= bound),
            "({fan_in}, {fan_out}): an entry beyond {bound}"
        );
        let (mean, variance) = sample_moments(w.as_slice());
        let want = 2.0 / (fan_in + fan_out) as f64; // bound^2 / 3
                                                    // For a uniform distribution Var(sample variance) = 0.8 sigma^4 / n; allow 6 standard
                                                    // errors, and 6 for the mean (sigma / sqrt(n)).
        let n = (fan_in * fan_out) as f64;
        assert!(
            (variance - want).abs() <= 6.0 * want * (0.8 / n).sqrt(),
            "({fan_in}, {fan_out}): variance {variance}, want {want}"
        );
        assert!(
            mean.abs() <= 6.0 * (want / n).sqrt(),
            "({fan_in}, {fan_out}): mean {mean}"
        );
    }
}
