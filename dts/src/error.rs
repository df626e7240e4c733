/// What can go wrong reading, editing or writing a device tree.
#[derive(Debug, thiserror::Error)]
pub enum DtsError {
    #[error("not a valid DTB: {0}")]
    BadDtb(String),
    #[error("no node {0}")]
    NoNode(String),
    #[error("no property {prop} in {node}")]
    NoProperty { node: String, prop: String },
    #[error("property {prop} appears twice in {node}")]
    DuplicateProperty { node: String, prop: String },
    #[error("node {0} appears twice")]
    DuplicateNode(String),
    #[error("invalid path `{0}`: use /a/b@addr")]
    BadPath(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write the DTB: {0}")]
    Write(String),
    #[error("dtc: {0}")]
    Dtc(String),
}
