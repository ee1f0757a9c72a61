//! PanDerm's linear probe: full-batch multinomial logistic regression on frozen features,
//! trained with torch-equivalent L-BFGS (see [`logreg`] for the objective, [`lbfgs`] for
//! the optimizer, [`linalg`] for the one matrix primitive), driven by [`run`]; scored by
//! [`metrics`] (with bootstrap confidence intervals), written up by [`report`] (PanDerm's
//! text log, CSV and confusion-matrix PNG), and saved as a head file ([`head_file`]) that
//! [`onnx_head`] lowers to the bundle's ONNX head.

pub mod head_file;
pub mod lbfgs;
pub mod linalg;
pub mod logreg;
pub mod metrics;
pub mod onnx_head;
pub mod report;
pub mod run;
