//! PanDerm's linear probe: full-batch multinomial logistic regression on frozen features,
//! trained with torch-equivalent L-BFGS (see [`logreg`] for the objective, [`lbfgs`] for
//! the optimizer, [`linalg`] for the one matrix primitive).

pub mod head_file;
pub mod lbfgs;
pub mod linalg;
pub mod logreg;
pub mod run;
