//! The Adam optimiser (Kingma and Ba, 2015) with the paper's settings (§5.3):
//! beta_1 = 0.9, beta_2 = 0.98, eps = 1e-9.
//!
//! ```text
//! m_t = beta_1 m_{t-1} + (1 - beta_1) g_t
//! v_t = beta_2 v_{t-1} + (1 - beta_2) g_t^2
//! theta_t = theta_{t-1} - lr_t * (m_t / (1 - beta_1^t)) / (sqrt(v_t / (1 - beta_2^t)) + eps)
//! ```

use nalgebra::{DMatrix, RealField};

use crate::params::Parameters;

/// Adam's hyper-parameters and its running moments, one pair per parameter tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<T: RealField> {
    pub beta_1: f64,
    pub beta_2: f64,
    pub eps: f64,
    /// Steps taken so far.
    pub t: u64,
    m: Vec<Vec<T>>,
    v: Vec<Vec<T>>,
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

    /// One update of separate parameter matrices with their gradients, at learning rate `lr`.
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
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            assert_eq!(
                p.shape(),
                g.shape(),
                "adam: parameter {i} is {:?} but its gradient is {:?}",
                p.shape(),
                g.shape()
            );
        }
        let params = params.iter_mut().map(|p| p.as_mut_slice()).collect();
        let grads = grads.iter().map(|g| g.as_slice()).collect();
        self.update(params, grads, lr);
    }

    /// One update of every parameter of a model (its named list, [`Parameters`]) with the
    /// gradients in `grads`, a value of the same type.
    ///
    /// # Panics
    /// If the two lists differ in names or sizes.
    pub fn step_params<P: Parameters<T>>(&mut self, model: &mut P, grads: &P, lr: f64) {
        let grads = grads.params();
        let mut params = model.params_mut();
        assert_eq!(
            params.len(),
            grads.len(),
            "adam: {} parameters but {} gradients",
            params.len(),
            grads.len()
        );
        for (p, g) in params.iter().zip(&grads) {
            assert!(
                p.name == g.name && p.data.len() == g.data.len(),
                "adam: parameter {} ({} values) but gradient {} ({} values)",
                p.name,
                p.data.len(),
                g.name,
                g.data.len()
            );
        }
        let params = params.iter_mut().map(|p| &mut *p.data).collect();
        let grads = grads.iter().map(|g| g.data).collect();
        self.update(params, grads, lr);
    }

    // ANCHOR: adam
    /// One Adam update (`eq:adam`) of each parameter tensor with its gradient, at rate `lr`.
    fn update(&mut self, params: Vec<&mut [T]>, grads: Vec<&[T]>, lr: f64) {
        if self.t == 0 {
            self.m = params.iter().map(|p| vec![T::zero(); p.len()]).collect();
            self.v = self.m.clone();
        }
        assert!(
            self.m.len() == params.len()
                && self.m.iter().zip(&params).all(|(m, p)| m.len() == p.len()),
            "adam: the number of parameters changed between steps"
        );
        self.t += 1;
        let c = |x: f64| -> T { nalgebra::convert(x) };
        let (b1, b2) = (c(self.beta_1), c(self.beta_2));
        let correction_1 = c(1.0 - self.beta_1.powi(self.t as i32));
        let correction_2 = c(1.0 - self.beta_2.powi(self.t as i32));
        let (lr, eps) = (c(lr), c(self.eps));
        for (i, (p, g)) in params.into_iter().zip(grads).enumerate() {
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (T::one() - b1) * g;
                *v = b2 * *v + (T::one() - b2) * g * g;
                let m_hat = *m / correction_1;
                let v_hat = *v / correction_2;
                *p -= lr * m_hat / (v_hat.sqrt() + eps);
            }
        }
    }
    // ANCHOR_END: adam

    /// The running moments m and v, one flat vector per parameter tensor in the list's order
    /// (storage order of the tensor), for checkpoints. Empty before the first step.
    pub fn moments(&self) -> (&[Vec<T>], &[Vec<T>]) {
        (&self.m, &self.v)
    }

    /// Restores the state saved from [`Adam::moments`] and `t`, to resume a run exactly.
    ///
    /// # Panics
    /// If `m` and `v` differ in number or sizes.
    pub fn restore(&mut self, t: u64, m: Vec<Vec<T>>, v: Vec<Vec<T>>) {
        assert!(
            m.len() == v.len() && m.iter().zip(&v).all(|(a, b)| a.len() == b.len()),
            "adam: the first and second moments differ in shape"
        );
        self.t = t;
        self.m = m;
        self.v = v;
    }
}
