//! The owned tree every edit works on.

use crate::DtsError;

/// One property: a name and its raw big-endian value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: Vec<u8>,
}

/// One node; `name` includes the unit address (`cpu@1`). The root's name is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub name: String,
    pub props: Vec<Property>,
    pub children: Vec<Node>,
}

/// A whole device tree: the root node plus the header data that is not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    pub root: Node,
    /// `/memreserve/` entries: (address, size).
    pub mem_reserve: Vec<(u64, u64)>,
    pub boot_cpuid_phys: u32,
}

/// Splits `/a/b@1` into its components; `/` is the root (no components).
pub(crate) fn components(path: &str) -> Result<Vec<&str>, DtsError> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| DtsError::BadPath(path.to_string()))?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(DtsError::BadPath(path.to_string()));
    }
    Ok(parts)
}

/// Whether `name` matches the path component `want`: exactly, or ignoring the unit address
/// when `want` has none (as dtc and Linux resolve `/memory` to `memory@40000000`).
fn matches(name: &str, want: &str) -> bool {
    name == want || (!want.contains('@') && name.split('@').next() == Some(want))
}

impl Node {
    pub fn new(name: &str) -> Node {
        Node {
            name: name.to_string(),
            ..Node::default()
        }
    }

    pub fn prop(&self, name: &str) -> Option<&Property> {
        self.props.iter().find(|p| p.name == name)
    }

    pub fn prop_u32(&self, name: &str) -> Option<u32> {
        let v = &self.prop(name)?.value;
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?)).filter(|_| v.len() == 4)
    }

    /// The property as a list of u32 cells; `None` if absent or not a whole number of cells.
    pub fn prop_cells(&self, name: &str) -> Option<Vec<u32>> {
        let v = &self.prop(name)?.value;
        if v.len() % 4 != 0 {
            return None;
        }
        Some(
            v.chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }

    /// The first string of a string (list) property.
    pub fn prop_str(&self, name: &str) -> Option<&str> {
        let v = &self.prop(name)?.value;
        let s = v.split(|&b| b == 0).next()?;
        std::str::from_utf8(s).ok()
    }

    /// Sets a property, replacing its value if it exists (never adding a second copy).
    pub fn set(&mut self, name: &str, value: Vec<u8>) {
        match self.props.iter_mut().find(|p| p.name == name) {
            Some(p) => p.value = value,
            None => self.props.push(Property {
                name: name.to_string(),
                value,
            }),
        }
    }

    pub fn set_u32(&mut self, name: &str, v: u32) {
        self.set(name, v.to_be_bytes().to_vec());
    }

    pub fn set_cells(&mut self, name: &str, cells: &[u32]) {
        self.set(name, cells.iter().flat_map(|c| c.to_be_bytes()).collect());
    }

    pub fn set_str(&mut self, name: &str, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.set(name, v);
    }

    pub fn set_empty(&mut self, name: &str) {
        self.set(name, Vec::new());
    }

    /// Removes a property; returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.props.len();
        self.props.retain(|p| p.name != name);
        before != self.props.len()
    }

    pub fn child(&self, want: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.name == want)
            .or_else(|| self.children.iter().find(|c| matches(&c.name, want)))
    }

    pub fn child_mut(&mut self, want: &str) -> Option<&mut Node> {
        let i = self
            .children
            .iter()
            .position(|c| c.name == want)
            .or_else(|| self.children.iter().position(|c| matches(&c.name, want)))?;
        Some(&mut self.children[i])
    }

    /// The child called `name`, created (empty, at the end) if missing.
    pub fn child_or_insert(&mut self, name: &str) -> &mut Node {
        let i = match self.children.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                self.children.push(Node::new(name));
                self.children.len() - 1
            }
        };
        &mut self.children[i]
    }

    /// Calls `f` on this node and every descendant, parents first.
    pub fn walk_mut(&mut self, f: &mut dyn FnMut(&mut Node)) {
        f(self);
        for c in &mut self.children {
            c.walk_mut(f);
        }
    }

    pub fn walk(&self, f: &mut dyn FnMut(&Node)) {
        f(self);
        for c in &self.children {
            c.walk(f);
        }
    }

    /// `#address-cells` / `#size-cells` this node gives its children (defaults 2 and 1).
    pub fn cells(&self) -> (u32, u32) {
        (
            self.prop_u32("#address-cells").unwrap_or(2),
            self.prop_u32("#size-cells").unwrap_or(1),
        )
    }
}

impl Tree {
    pub fn node(&self, path: &str) -> Result<&Node, DtsError> {
        let mut n = &self.root;
        for c in components(path)? {
            n = n
                .child(c)
                .ok_or_else(|| DtsError::NoNode(path.to_string()))?;
        }
        Ok(n)
    }

    pub fn node_mut(&mut self, path: &str) -> Result<&mut Node, DtsError> {
        let mut n = &mut self.root;
        for c in components(path)? {
            n = n
                .child_mut(c)
                .ok_or_else(|| DtsError::NoNode(path.to_string()))?;
        }
        Ok(n)
    }

    /// The node at `path`, creating missing nodes on the way.
    pub fn node_or_insert(&mut self, path: &str) -> Result<&mut Node, DtsError> {
        let mut n = &mut self.root;
        for c in components(path)? {
            if n.child(c).is_some() {
                n = n.child_mut(c).expect("checked above");
            } else {
                n = n.child_or_insert(c);
            }
        }
        Ok(n)
    }

    /// Deletes the node at `path` (not the root).
    pub fn delete_node(&mut self, path: &str) -> Result<Node, DtsError> {
        let parts = components(path)?;
        let (last, parents) = parts
            .split_last()
            .ok_or_else(|| DtsError::Invalid("cannot delete the root node".into()))?;
        let mut n = &mut self.root;
        for c in parents {
            n = n
                .child_mut(c)
                .ok_or_else(|| DtsError::NoNode(path.to_string()))?;
        }
        let i = n
            .children
            .iter()
            .position(|c| c.name == *last)
            .or_else(|| n.children.iter().position(|c| matches(&c.name, last)))
            .ok_or_else(|| DtsError::NoNode(path.to_string()))?;
        Ok(n.children.remove(i))
    }

    /// Deletes one property; an absent property is an error so typos do not pass silently.
    pub fn delete_property(&mut self, path: &str, prop: &str) -> Result<(), DtsError> {
        if self.node_mut(path)?.remove(prop) {
            Ok(())
        } else {
            Err(DtsError::NoProperty {
                node: path.to_string(),
                prop: prop.to_string(),
            })
        }
    }

    /// Checks what the writer relies on: no property or child name twice in one node.
    pub fn check(&self) -> Result<(), DtsError> {
        fn go(n: &Node, path: &str) -> Result<(), DtsError> {
            for (i, p) in n.props.iter().enumerate() {
                if n.props[..i].iter().any(|q| q.name == p.name) {
                    return Err(DtsError::DuplicateProperty {
                        node: if path.is_empty() {
                            "/".into()
                        } else {
                            path.into()
                        },
                        prop: p.name.clone(),
                    });
                }
            }
            for (i, c) in n.children.iter().enumerate() {
                let cp = format!("{path}/{}", c.name);
                if n.children[..i].iter().any(|d| d.name == c.name) {
                    return Err(DtsError::DuplicateNode(cp));
                }
                go(c, &cp)?;
            }
            Ok(())
        }
        go(&self.root, "")
    }

    /// Every phandle in use.
    pub fn phandles(&self) -> Vec<u32> {
        let mut out = Vec::new();
        self.root.walk(&mut |n| {
            for name in ["phandle", "linux,phandle"] {
                if let Some(p) = n.prop_u32(name) {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        });
        out
    }

    /// A phandle no node uses yet.
    pub fn new_phandle(&self) -> u32 {
        self.phandles().into_iter().max().unwrap_or(0) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::default();
        let m = t.root.child_or_insert("memory@40000000");
        m.set_str("device_type", "memory");
        t.root.child_or_insert("cpus").child_or_insert("cpu@0");
        t
    }

    #[test]
    fn paths_resolve_with_and_without_unit_address() {
        let t = sample();
        assert!(t.node("/memory").is_ok());
        assert!(t.node("/memory@40000000").is_ok());
        assert!(t.node("/memory@0").is_err());
        assert!(t.node("/cpus/cpu@0").is_ok());
        assert!(t.node("/").is_ok());
        assert!(matches!(t.node("cpus"), Err(DtsError::BadPath(_))));
        assert!(matches!(t.node("/cpus//cpu"), Err(DtsError::BadPath(_))));
    }

    #[test]
    fn set_replaces_and_check_refuses_duplicates() {
        let mut t = sample();
        let n = t.node_mut("/memory").unwrap();
        n.set_u32("x", 1);
        n.set_u32("x", 2);
        assert_eq!(n.props.iter().filter(|p| p.name == "x").count(), 1);
        assert_eq!(n.prop_u32("x"), Some(2));
        assert!(t.check().is_ok());
        t.node_mut("/memory").unwrap().props.push(Property {
            name: "x".into(),
            value: vec![],
        });
        assert!(matches!(t.check(), Err(DtsError::DuplicateProperty { .. })));
    }

    #[test]
    fn delete() {
        let mut t = sample();
        assert!(t.delete_node("/cpus/cpu@0").is_ok());
        assert!(t.delete_node("/cpus/cpu@0").is_err());
        assert!(t.delete_node("/").is_err());
        assert!(t.delete_property("/memory", "device_type").is_ok());
        assert!(t.delete_property("/memory", "device_type").is_err());
    }
}
