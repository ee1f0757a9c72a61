//! Full-batch L-BFGS with strong-Wolfe line search: a line-by-line port of
//! `torch.optim.LBFGS(line_search_fn="strong_wolfe")` (torch/optim/lbfgs.py), which is what
//! PanDerm's linear probe uses. Same defaults, same step-size rule on the first iteration,
//! same curvature test (`ys > 1e-10`), same termination tests, same cubic interpolation and
//! zoom phase. It works in f64 (torch works in the parameters' f32), which only makes the
//! stopping tests behave more smoothly near the optimum.

/// L-BFGS settings; [`LbfgsOptions::default`] is PanDerm's (torch's defaults with
/// `max_iter = 1000`).
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsOptions {
    /// Learning rate (initial step length after the first iteration).
    pub lr: f64,
    /// Maximum iterations.
    pub max_iter: usize,
    /// Maximum function evaluations (torch: `max_iter * 5 / 4`).
    pub max_eval: usize,
    /// Stop when the largest gradient component is at most this.
    pub tolerance_grad: f64,
    /// Stop when the loss or the step changes less than this.
    pub tolerance_change: f64,
    /// Number of correction pairs kept.
    pub history_size: usize,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            lr: 1.0,
            max_iter: 1000,
            max_eval: 1250,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
        }
    }
}

/// Why the optimizer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The gradient's largest component fell under `tolerance_grad`.
    GradientTolerance,
    /// The directional derivative was no longer negative enough.
    NoDescent,
    /// The step became smaller than `tolerance_change`.
    StepTolerance,
    /// The loss changed less than `tolerance_change`.
    LossTolerance,
    /// `max_iter` reached.
    MaxIterations,
    /// `max_eval` reached.
    MaxEvaluations,
}

/// Outcome of [`minimize`].
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsReport {
    /// Final loss (at the returned parameters).
    pub loss: f64,
    /// Loss at the starting point.
    pub initial_loss: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Objective evaluations.
    pub evaluations: usize,
    /// Why it stopped.
    pub reason: StopReason,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// torch's `_cubic_interpolate`: minimiser of the cubic through two points with derivatives,
/// clamped to `bounds` (default: the interval between the points).
fn cubic_interpolate(x1: f64, f1: f64, g1: f64, x2: f64, f2: f64, g2: f64, bounds: Option<(f64, f64)>) -> f64 {
    let (lo, hi) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        min_pos.max(lo).min(hi)
    } else {
        (lo + hi) / 2.0
    }
}

/// Evaluates the objective at `x + t·d`.
fn directional<F: FnMut(&[f64], &mut [f64]) -> f64>(
    f: &mut F,
    x: &[f64],
    t: f64,
    d: &[f64],
    buf: &mut Vec<f64>,
) -> (f64, Vec<f64>) {
    buf.clear();
    buf.extend(x.iter().zip(d).map(|(xi, di)| xi + t * di));
    let mut g = vec![0.0; x.len()];
    let loss = f(buf, &mut g);
    (loss, g)
}

/// torch's `_strong_wolfe`. Returns `(loss, grad, t, evaluations)`.
#[allow(clippy::too_many_arguments)]
fn strong_wolfe<F: FnMut(&[f64], &mut [f64]) -> f64>(
    f: &mut F,
    x: &[f64],
    mut t: f64,
    d: &[f64],
    loss: f64,
    grad: &[f64],
    gtd: f64,
    tolerance_change: f64,
) -> (f64, Vec<f64>, f64, usize) {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    const MAX_LS: usize = 25;
    let mut buf = Vec::with_capacity(x.len());
    let d_norm = max_abs(d);
    let (mut f_new, mut g_new) = directional(f, x, t, d, &mut buf);
    let mut evals = 1;
    let mut gtd_new = dot(&g_new, d);
    let (mut t_prev, mut f_prev, mut g_prev, mut gtd_prev) = (0.0, loss, grad.to_vec(), gtd);
    let mut done = false;
    let mut ls_iter = 0;
    // bracket: positions, losses, gradients, directional derivatives
    let mut br_t: Vec<f64>;
    let mut br_f: Vec<f64>;
    let mut br_g: Vec<Vec<f64>>;
    let mut br_gtd: Vec<f64>;
    loop {
        if ls_iter >= MAX_LS {
            br_t = vec![0.0, t];
            br_f = vec![loss, f_new];
            br_g = vec![grad.to_vec(), g_new.clone()];
            // torch leaves bracket_gtd unset here; the zoom loop below cannot run.
            br_gtd = vec![gtd, gtd_new];
            break;
        }
        if f_new > loss + C1 * t * gtd || (ls_iter > 1 && f_new >= f_prev) {
            br_t = vec![t_prev, t];
            br_f = vec![f_prev, f_new];
            br_g = vec![g_prev.clone(), g_new.clone()];
            br_gtd = vec![gtd_prev, gtd_new];
            break;
        }
        if gtd_new.abs() <= -C2 * gtd {
            br_t = vec![t];
            br_f = vec![f_new];
            br_g = vec![g_new.clone()];
            br_gtd = vec![gtd_new];
            done = true;
            break;
        }
        if gtd_new >= 0.0 {
            br_t = vec![t_prev, t];
            br_f = vec![f_prev, f_new];
            br_g = vec![g_prev.clone(), g_new.clone()];
            br_gtd = vec![gtd_prev, gtd_new];
            break;
        }
        let min_step = t + 0.01 * (t - t_prev);
        let max_step = t * 10.0;
        let tmp = t;
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, Some((min_step, max_step)));
        t_prev = tmp;
        f_prev = f_new;
        g_prev = g_new.clone();
        gtd_prev = gtd_new;
        (f_new, g_new) = directional(f, x, t, d, &mut buf);
        evals += 1;
        gtd_new = dot(&g_new, d);
        ls_iter += 1;
    }

    // Zoom phase.
    let mut insuf_progress = false;
    let order = |bf: &[f64]| if bf[0] <= bf[bf.len() - 1] { (0, 1) } else { (1, 0) };
    let (mut low, mut high) = order(&br_f);
    while !done && ls_iter < MAX_LS {
        if (br_t[1] - br_t[0]).abs() * d_norm < tolerance_change {
            break;
        }
        t = cubic_interpolate(br_t[0], br_f[0], br_gtd[0], br_t[1], br_f[1], br_gtd[1], None);
        let (bmax, bmin) = (br_t[0].max(br_t[1]), br_t[0].min(br_t[1]));
        let eps = 0.1 * (bmax - bmin);
        if (bmax - t).min(t - bmin) < eps {
            if insuf_progress || t >= bmax || t <= bmin {
                t = if (t - bmax).abs() < (t - bmin).abs() { bmax - eps } else { bmin + eps };
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        (f_new, g_new) = directional(f, x, t, d, &mut buf);
        evals += 1;
        gtd_new = dot(&g_new, d);
        ls_iter += 1;
        if f_new > loss + C1 * t * gtd || f_new >= br_f[low] {
            br_t[high] = t;
            br_f[high] = f_new;
            br_g[high] = g_new.clone();
            br_gtd[high] = gtd_new;
            (low, high) = order(&br_f);
        } else {
            if gtd_new.abs() <= -C2 * gtd {
                done = true;
            } else if gtd_new * (br_t[high] - br_t[low]) >= 0.0 {
                br_t[high] = br_t[low];
                br_f[high] = br_f[low];
                br_g[high] = br_g[low].clone();
                br_gtd[high] = br_gtd[low];
            }
            br_t[low] = t;
            br_f[low] = f_new;
            br_g[low] = g_new.clone();
            br_gtd[low] = gtd_new;
        }
    }
    let low = low.min(br_t.len() - 1);
    (br_f[low], br_g.swap_remove(low), br_t[low], evals)
}

/// Minimises `f` from `x` (updated in place). `f(x, grad)` returns the loss and writes the
/// gradient into `grad`.
pub fn minimize<F: FnMut(&[f64], &mut [f64]) -> f64>(mut f: F, x: &mut [f64], opts: &LbfgsOptions) -> LbfgsReport {
    let n = x.len();
    let mut grad = vec![0.0; n];
    let mut loss = f(x, &mut grad);
    let initial_loss = loss;
    let mut evals = 1;
    let report =
        |loss, iterations, evaluations, reason| LbfgsReport { loss, initial_loss, iterations, evaluations, reason };
    if max_abs(&grad) <= opts.tolerance_grad {
        return report(loss, 0, evals, StopReason::GradientTolerance);
    }
    let mut d = vec![0.0; n];
    let mut t = 0.0;
    let mut old_dirs: std::collections::VecDeque<Vec<f64>> = Default::default();
    let mut old_stps: std::collections::VecDeque<Vec<f64>> = Default::default();
    let mut ro: std::collections::VecDeque<f64> = Default::default();
    let mut h_diag = 1.0;
    let mut prev_grad = vec![0.0; n];
    let mut al = vec![0.0; opts.history_size];
    let mut iter = 0;
    loop {
        iter += 1;
        if iter == 1 {
            for (di, gi) in d.iter_mut().zip(&grad) {
                *di = -gi;
            }
        } else {
            let y: Vec<f64> = grad.iter().zip(&prev_grad).map(|(a, b)| a - b).collect();
            let s: Vec<f64> = d.iter().map(|v| v * t).collect();
            let ys = dot(&y, &s);
            if ys > 1e-10 {
                if old_dirs.len() == opts.history_size {
                    old_dirs.pop_front();
                    old_stps.pop_front();
                    ro.pop_front();
                }
                h_diag = ys / dot(&y, &y);
                old_dirs.push_back(y);
                old_stps.push_back(s);
                ro.push_back(1.0 / ys);
            }
            let num_old = old_dirs.len();
            let mut q: Vec<f64> = grad.iter().map(|g| -g).collect();
            for i in (0..num_old).rev() {
                al[i] = dot(&old_stps[i], &q) * ro[i];
                for (qj, yj) in q.iter_mut().zip(&old_dirs[i]) {
                    *qj -= al[i] * yj;
                }
            }
            for qj in q.iter_mut() {
                *qj *= h_diag;
            }
            for i in 0..num_old {
                let be_i = dot(&old_dirs[i], &q) * ro[i];
                for (rj, sj) in q.iter_mut().zip(&old_stps[i]) {
                    *rj += (al[i] - be_i) * sj;
                }
            }
            d = q;
        }
        prev_grad.copy_from_slice(&grad);
        let prev_loss = loss;
        t = if iter == 1 { (1.0f64).min(1.0 / grad.iter().map(|g| g.abs()).sum::<f64>()) * opts.lr } else { opts.lr };
        let gtd = dot(&grad, &d);
        if gtd > -opts.tolerance_change {
            return report(loss, iter, evals, StopReason::NoDescent);
        }
        let (new_loss, new_grad, new_t, ls_evals) =
            strong_wolfe(&mut f, x, t, &d, loss, &grad, gtd, opts.tolerance_change);
        loss = new_loss;
        grad = new_grad;
        t = new_t;
        for (xi, di) in x.iter_mut().zip(&d) {
            *xi += t * di;
        }
        evals += ls_evals;
        let opt_cond = max_abs(&grad) <= opts.tolerance_grad;
        if iter == opts.max_iter {
            return report(loss, iter, evals, StopReason::MaxIterations);
        }
        if evals >= opts.max_eval {
            return report(loss, iter, evals, StopReason::MaxEvaluations);
        }
        if opt_cond {
            return report(loss, iter, evals, StopReason::GradientTolerance);
        }
        if d.iter().fold(0.0f64, |m, v| m.max((v * t).abs())) <= opts.tolerance_change {
            return report(loss, iter, evals, StopReason::StepTolerance);
        }
        if (loss - prev_loss).abs() < opts.tolerance_change {
            return report(loss, iter, evals, StopReason::LossTolerance);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rosenbrock_converges() {
        let f = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let mut x = vec![-1.2, 1.0];
        let r = minimize(f, &mut x, &LbfgsOptions::default());
        // torch's tolerance_change (1e-9 on the loss) stops near, not at, the minimum.
        assert!((x[0] - 1.0).abs() < 1e-3 && (x[1] - 1.0).abs() < 1e-3, "{x:?} {r:?}");
        assert!(r.loss < 1e-8, "{r:?}");
    }

    #[test]
    fn quadratic_in_many_dimensions() {
        let n = 50;
        let f = |x: &[f64], g: &mut [f64]| {
            let mut s = 0.0;
            for i in 0..n {
                let w = (i + 1) as f64;
                g[i] = 2.0 * w * (x[i] - 1.0);
                s += w * (x[i] - 1.0).powi(2);
            }
            s
        };
        let mut x = vec![0.0; n];
        let r = minimize(f, &mut x, &LbfgsOptions::default());
        assert!(x.iter().all(|v| (v - 1.0).abs() < 1e-4), "{r:?}");
        assert!(r.loss < 1e-8, "{r:?}");
    }

    #[test]
    fn cubic_interpolation_matches_torch() {
        // Values from torch 2.15 `torch.optim.lbfgs._cubic_interpolate` (float64 tensors).
        let cases = [
            ((0.0, 1.0, -1.0, 1.0, 0.5, 0.5, None), 0.816496580927726),
            ((0.0, 0.0, 1.0, 1.0, 0.0, 1.0, Some((0.2, 0.4))), 0.4),
            ((2.0, 1.0, 0.3, 0.5, 0.7, -0.2, None), 0.7387059395283295),
        ];
        for ((x1, f1, g1, x2, f2, g2, b), want) in cases {
            let got = cubic_interpolate(x1, f1, g1, x2, f2, g2, b);
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }
}
