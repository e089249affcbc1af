//! The Adam optimiser (Kingma and Ba, 2015) with the paper's settings (§5.3):
//! beta_1 = 0.9, beta_2 = 0.98, eps = 1e-9.
//!
//! ```text
//! m_t = beta_1 m_{t-1} + (1 - beta_1) g_t
//! v_t = beta_2 v_{t-1} + (1 - beta_2) g_t^2
//! theta_t = theta_{t-1} - lr_t * (m_t / (1 - beta_1^t)) / (sqrt(v_t / (1 - beta_2^t)) + eps)
//! ```

use nalgebra::{DMatrix, RealField};

/// Adam's hyper-parameters and its running moments, one pair per parameter matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<T: RealField> {
    pub beta_1: f64,
    pub beta_2: f64,
    pub eps: f64,
    /// Steps taken so far.
    pub t: u64,
    m: Vec<DMatrix<T>>,
    v: Vec<DMatrix<T>>,
}

impl<T: RealField + Copy> Adam<T> {
    /// The paper's settings: beta_1 = 0.9, beta_2 = 0.98, eps = 1e-9.
    pub fn paper() -> Self {
        Adam::new(0.9, 0.98, 1e-9)
    }

    /// Any settings.
    pub fn new(beta_1: f64, beta_2: f64, eps: f64) -> Self {
        Adam {
            beta_1,
            beta_2,
            eps,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    // ANCHOR: adam
    /// One update of every parameter with its gradient, at learning rate `lr` (`eq:adam`).
    ///
    /// # Panics
    /// If `params` and `grads` differ in number or shape, or differ from earlier calls.
    pub fn step(&mut self, params: &mut [&mut DMatrix<T>], grads: &[&DMatrix<T>], lr: f64) {
        assert_eq!(
            params.len(),
            grads.len(),
            "adam: {} parameters but {} gradients",
            params.len(),
            grads.len()
        );
        if self.t == 0 {
            self.m = params
                .iter()
                .map(|p| DMatrix::zeros(p.nrows(), p.ncols()))
                .collect();
            self.v = self.m.clone();
        }
        assert_eq!(
            self.m.len(),
            params.len(),
            "adam: the number of parameters changed between steps"
        );
        self.t += 1;
        let c = |x: f64| -> T { nalgebra::convert(x) };
        let (b1, b2) = (c(self.beta_1), c(self.beta_2));
        let correction_1 = c(1.0 - self.beta_1.powi(self.t as i32));
        let correction_2 = c(1.0 - self.beta_2.powi(self.t as i32));
        let (lr, eps) = (c(lr), c(self.eps));
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            assert_eq!(
                p.shape(),
                g.shape(),
                "adam: parameter {i} is {:?} but its gradient is {:?}",
                p.shape(),
                g.shape()
            );
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            m.zip_apply(g, |m, g| *m = b1 * *m + (T::one() - b1) * g);
            v.zip_apply(g, |v, g| *v = b2 * *v + (T::one() - b2) * g * g);
            for ((p, &m), &v) in p.iter_mut().zip(m.iter()).zip(v.iter()) {
                let m_hat = m / correction_1;
                let v_hat = v / correction_2;
                *p -= lr * m_hat / (v_hat.sqrt() + eps);
            }
        }
    }
    // ANCHOR_END: adam
}
