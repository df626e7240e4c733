//! Board definitions: `boards/<name>/board.toml`, loaded as data so that adding a board needs
//! no Rust change. See `boards/README.md` for the fields.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a board could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("unknown board `{name}` (known: {known})")]
    Unknown { name: String, known: String },
    #[error("no boards directory found (set MINOS_BOARDS)")]
    NoBoardsDir,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
    #[error("board `{board}` has no {what}")]
    Missing { board: String, what: &'static str },
    #[error("boot command template: {0}")]
    Template(String),
}

/// Who enters `minos.bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Firmware {
    /// U-Boot `booti`.
    UBoot,
    /// TF-A, with `minos.bin` as BL33.
    TfA,
}

/// The board's interrupt controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IrqChip {
    Gicv2,
    Gicv3,
    Bcm2836,
}

impl fmt::Display for IrqChip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IrqChip::Gicv2 => "GICv2",
            IrqChip::Gicv3 => "GICv3",
            IrqChip::Bcm2836 => "BCM2836",
        })
    }
}

/// A physical address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

impl Region {
    /// One past the last byte; `None` if the range wraps the address space.
    pub fn end(&self) -> Option<u64> {
        self.base.checked_add(self.size)
    }

    pub fn contains(&self, other: &Region) -> bool {
        match (self.end(), other.end()) {
            (Some(e), Some(oe)) => other.base >= self.base && oe <= e,
            _ => false,
        }
    }

    pub fn overlaps(&self, other: &Region) -> bool {
        let (Some(e), Some(oe)) = (self.end(), other.end()) else {
            return true;
        };
        self.base < oe && other.base < e
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#x}..{:#x}",
            self.base,
            self.base.wrapping_add(self.size)
        )
    }
}

/// RAM nobody may load into.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserved {
    pub addr: u64,
    pub size: u64,
    pub why: String,
}

/// The RAM the hypervisor keeps, and how its DTB is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hypervisor {
    pub base: u64,
    pub size: u64,
    /// The hypervisor DTS (with its `/vms` node), relative to the board folder.
    pub dts: PathBuf,
    /// The kernel DTB the DTS is laid over, relative to `$KDTBS`.
    pub upstream_dtb: Option<PathBuf>,
    /// The DTS is laid over QEMU's own machine DTB (`-M ...,dumpdtb=`).
    #[serde(default)]
    pub qemu_dtb: bool,
}

/// VM0: its RAM, vCPUs, command line and where its DTB comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vm0 {
    pub base: u64,
    pub size: u64,
    pub vcpus: u32,
    pub cmdline: String,
    pub upstream_dtb: Option<PathBuf>,
    pub dts: Option<PathBuf>,
    #[serde(default)]
    pub qemu_dtb: bool,
}

/// One file loaded into RAM before the hypervisor runs: its address and the room kept for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    pub addr: u64,
    pub size: u64,
}

impl Load {
    pub fn region(&self) -> Region {
        Region {
            base: self.addr,
            size: self.size,
        }
    }
}

/// Load addresses, in the order U-Boot loads them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Loads {
    pub minos: Load,
    pub hyp_dtb: Load,
    pub vm0_image: Load,
    pub vm0_dtb: Load,
    pub vm0_initrd: Option<Load>,
}

/// The files the boot loads, by the same keys as [`Loads`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Item {
    Minos,
    HypDtb,
    Vm0Image,
    Vm0Dtb,
    Vm0Initrd,
}

impl Item {
    pub const ALL: [Item; 5] = [
        Item::Minos,
        Item::HypDtb,
        Item::Vm0Image,
        Item::Vm0Dtb,
        Item::Vm0Initrd,
    ];

    /// The key used in board.toml and in boot command templates.
    pub fn key(self) -> &'static str {
        match self {
            Item::Minos => "minos",
            Item::HypDtb => "hyp_dtb",
            Item::Vm0Image => "vm0_image",
            Item::Vm0Dtb => "vm0_dtb",
            Item::Vm0Initrd => "vm0_initrd",
        }
    }

    /// Whether the item belongs to the hypervisor (else to VM0).
    fn is_hypervisor(self) -> bool {
        matches!(self, Item::Minos | Item::HypDtb)
    }
}

/// File names on the boot partition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    pub minos: String,
    pub hyp_dtb: String,
    pub vm0_image: String,
    pub vm0_dtb: String,
    pub vm0_initrd: Option<String>,
    /// U-Boot's name on the card when the boot ROM loads it from there (`kernel8.img` on a Pi).
    pub uboot: Option<String>,
}

/// Where U-Boot keeps its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvStore {
    /// A file on the first FAT partition (`env_file`).
    Fat,
    /// Flash (SPI NOR, or QEMU's pflash).
    Flash,
}

/// U-Boot: the environment's shape and the boot command templates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UBoot {
    pub env_size: usize,
    #[serde(default)]
    pub env_redundant: bool,
    pub env_store: EnvStore,
    pub env_file: Option<String>,
    /// Run before loading anything (e.g. `virtio scan`).
    pub prepare: Option<String>,
    /// One load command; `{addr}` and `{file}` are filled in.
    pub load: String,
    /// The final boot command; `{minos}`, `{hyp_dtb}`, ... are load addresses.
    pub boot: String,
    /// Extra `key=value` environment lines.
    #[serde(default)]
    pub env: Vec<String>,
}

/// Raspberry Pi firmware: config.txt lines and the files its boot ROM needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rpi {
    pub config: Vec<String>,
    pub firmware: Vec<String>,
}

/// The QEMU command line (without the program name). Board data for whoever launches QEMU;
/// no mkimage subcommand does.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct Qemu {
    pub args: Vec<String>,
}

/// One board, as read from `boards/<name>/board.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub model: String,
    pub cpus: u32,
    pub irqchip: IrqChip,
    pub firmware: Firmware,
    pub memory: Region,
    #[serde(default)]
    pub reserved: Vec<Reserved>,
    pub hypervisor: Hypervisor,
    pub vm0: Vm0,
    pub load: Loads,
    pub files: Files,
    pub uboot: Option<UBoot>,
    pub rpi: Option<Rpi>,
    #[allow(dead_code)] // see [`Qemu`]
    pub qemu: Option<Qemu>,
    /// The board's folder (not in the TOML).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// Finds the `boards/` folder: `$MINOS_BOARDS`, then a `boards/` next to or above the
/// executable (an installed tree or `target/debug/`), then the source tree this was built from.
pub fn boards_dir() -> Result<PathBuf, BoardError> {
    if let Some(d) = std::env::var_os("MINOS_BOARDS") {
        return Ok(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            let cand = dir.join("boards");
            if cand.join("README.md").is_file() || has_board(&cand) {
                return Ok(cand);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards");
    if src.is_dir() {
        return Ok(src);
    }
    Err(BoardError::NoBoardsDir)
}

fn has_board(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut it| it.any(|e| e.is_ok_and(|e| e.path().join("board.toml").is_file())))
        .unwrap_or(false)
}

/// The names of every board in `dir`, sorted.
pub fn list_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("board.toml").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Board {
    /// Loads `boards/<name>/board.toml` from [`boards_dir`] and checks it.
    pub fn load(name: &str) -> Result<Board, BoardError> {
        Board::load_from(&boards_dir()?, name)
    }

    /// Loads `<dir>/<name>/board.toml` and checks it.
    pub fn load_from(dir: &Path, name: &str) -> Result<Board, BoardError> {
        let path = dir.join(name).join("board.toml");
        if !valid_name(name) || !path.is_file() {
            return Err(BoardError::Unknown {
                name: name.to_string(),
                known: list_in(dir).join(", "),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| BoardError::Io {
            path: path.clone(),
            source,
        })?;
        let mut board: Board = toml::from_str(&text).map_err(|source| BoardError::Parse {
            path: path.clone(),
            source: Box::new(source),
        })?;
        board.dir = dir.join(name);
        board
            .check()
            .map_err(|msg| BoardError::Invalid { path, msg })?;
        Ok(board)
    }

    /// The load address and reserved size of `item`, if the board loads it.
    pub fn load_of(&self, item: Item) -> Option<Load> {
        match item {
            Item::Minos => Some(self.load.minos),
            Item::HypDtb => Some(self.load.hyp_dtb),
            Item::Vm0Image => Some(self.load.vm0_image),
            Item::Vm0Dtb => Some(self.load.vm0_dtb),
            Item::Vm0Initrd => self.load.vm0_initrd,
        }
    }

    /// The file name of `item` on the boot partition.
    pub fn file_of(&self, item: Item) -> Option<&str> {
        match item {
            Item::Minos => Some(&self.files.minos),
            Item::HypDtb => Some(&self.files.hyp_dtb),
            Item::Vm0Image => Some(&self.files.vm0_image),
            Item::Vm0Dtb => Some(&self.files.vm0_dtb),
            Item::Vm0Initrd => self.files.vm0_initrd.as_deref(),
        }
    }

    pub fn hypervisor_region(&self) -> Region {
        Region {
            base: self.hypervisor.base,
            size: self.hypervisor.size,
        }
    }

    pub fn vm0_region(&self) -> Region {
        Region {
            base: self.vm0.base,
            size: self.vm0.size,
        }
    }

    /// Absolute path of the hypervisor DTS.
    pub fn hyp_dts_path(&self) -> PathBuf {
        self.dir.join(&self.hypervisor.dts)
    }

    /// The U-Boot section, or an error naming the board.
    pub fn uboot(&self) -> Result<&UBoot, BoardError> {
        self.uboot.as_ref().ok_or_else(|| BoardError::Missing {
            board: self.name.clone(),
            what: match self.firmware {
                Firmware::TfA => "U-Boot (TF-A starts the hypervisor directly)",
                Firmware::UBoot => "[uboot] section",
            },
        })
    }

    /// The U-Boot `bootcmd`: `prepare`, one `load` per item (VM0's initrd only when
    /// `with_initrd`), then `boot`, joined with `; `.
    pub fn bootcmd(&self, with_initrd: bool) -> Result<String, BoardError> {
        let ub = self.uboot()?;
        let mut cmds = Vec::new();
        if let Some(p) = &ub.prepare {
            cmds.push(p.clone());
        }
        let mut vars = BTreeMap::new();
        for item in Item::ALL {
            if item == Item::Vm0Initrd && !with_initrd {
                continue;
            }
            let (Some(load), Some(file)) = (self.load_of(item), self.file_of(item)) else {
                if item == Item::Vm0Initrd {
                    return Err(BoardError::Missing {
                        board: self.name.clone(),
                        what: "load.vm0_initrd and files.vm0_initrd",
                    });
                }
                continue;
            };
            let addr = format!("{:#x}", load.addr);
            let one = BTreeMap::from([("addr", addr.clone()), ("file", file.to_string())]);
            cmds.push(fill(&ub.load, &one)?);
            vars.insert(item.key(), addr);
        }
        cmds.push(fill(&ub.boot, &vars)?);
        Ok(cmds.join("; "))
    }

    /// The environment lines (`key=value`) U-Boot needs to boot the hypervisor unattended,
    /// sorted by key as U-Boot's own `saveenv` writes them. A `bootcmd` in `[uboot] env`
    /// replaces the generated one.
    pub fn env_lines(&self, with_initrd: bool) -> Result<Vec<String>, BoardError> {
        let ub = self.uboot()?;
        let mut vars = BTreeMap::new();
        vars.insert("bootcmd".to_string(), self.bootcmd(with_initrd)?);
        for line in &ub.env {
            let (k, v) = line.split_once('=').ok_or_else(|| {
                BoardError::Template(format!("uboot.env line `{line}` has no `=`"))
            })?;
            vars.insert(k.to_string(), v.to_string());
        }
        Ok(vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
    }

    /// The QEMU arguments with `{key}` placeholders filled from `vars`.
    #[allow(dead_code)] // see [`Qemu`]
    pub fn qemu_args(&self, vars: &BTreeMap<&str, String>) -> Result<Vec<String>, BoardError> {
        let q = self.qemu.as_ref().ok_or_else(|| BoardError::Missing {
            board: self.name.clone(),
            what: "[qemu] section",
        })?;
        q.args.iter().map(|a| fill(a, vars)).collect()
    }

    /// Checks that the memory map holds together; the message names the first problem.
    pub fn check(&self) -> Result<(), String> {
        if self.memory.end().is_none() {
            return Err(format!("memory {} wraps", self.memory));
        }
        if self.vm0.vcpus == 0 || self.vm0.vcpus > self.cpus {
            return Err(format!(
                "vm0.vcpus = {} but the board has {} CPUs",
                self.vm0.vcpus, self.cpus
            ));
        }
        let hyp = self.hypervisor_region();
        let vm0 = self.vm0_region();
        for (what, r) in [("hypervisor", hyp), ("vm0", vm0)] {
            if !self.memory.contains(&r) {
                return Err(format!("{what} {r} is not inside memory {}", self.memory));
            }
        }
        if hyp.overlaps(&vm0) {
            return Err(format!("hypervisor {hyp} overlaps vm0 {vm0}"));
        }
        let loads: Vec<(Item, Region)> = Item::ALL
            .iter()
            .filter_map(|&i| self.load_of(i).map(|l| (i, l.region())))
            .collect();
        for (i, (item, r)) in loads.iter().enumerate() {
            if r.size == 0 {
                return Err(format!("load.{} has size 0", item.key()));
            }
            let (owner_name, owner) = if item.is_hypervisor() {
                ("hypervisor", hyp)
            } else {
                ("vm0", vm0)
            };
            if !owner.contains(r) {
                return Err(format!(
                    "load.{} {r} is not inside {owner_name} {owner}",
                    item.key()
                ));
            }
            for res in &self.reserved {
                let rr = Region {
                    base: res.addr,
                    size: res.size,
                };
                if r.overlaps(&rr) {
                    return Err(format!(
                        "load.{} {r} overlaps reserved {rr} ({})",
                        item.key(),
                        res.why
                    ));
                }
            }
            for (other, o) in &loads[i + 1..] {
                if r.overlaps(o) {
                    return Err(format!(
                        "load.{} {r} overlaps load.{} {o}",
                        item.key(),
                        other.key()
                    ));
                }
            }
        }
        if self.load.vm0_initrd.is_some() != self.files.vm0_initrd.is_some() {
            return Err("load.vm0_initrd and files.vm0_initrd must come together".into());
        }
        if let Some(ub) = &self.uboot {
            if ub.env_store == EnvStore::Fat && ub.env_file.is_none() {
                return Err("uboot.env_store = \"fat\" needs uboot.env_file".into());
            }
            let header = if ub.env_redundant { 5 } else { 4 };
            if ub.env_size <= header + 2 {
                return Err(format!("uboot.env_size {:#x} is too small", ub.env_size));
            }
            self.bootcmd(self.load.vm0_initrd.is_some())
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Replaces every `{key}` in `template` from `vars`; an unknown key or a stray brace is an
/// error, so a typo in board.toml does not reach U-Boot.
fn fill(template: &str, vars: &BTreeMap<&str, String>) -> Result<String, BoardError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        if rest.as_bytes()[open] == b'}' {
            return Err(BoardError::Template(format!("stray `}}` in `{template}`")));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| BoardError::Template(format!("unclosed `{{` in `{template}`")))?;
        let key = &after[..close];
        let val = vars.get(key).ok_or_else(|| {
            BoardError::Template(format!("unknown placeholder `{{{key}}}` in `{template}`"))
        })?;
        out.push_str(val);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../boards")
    }

    #[test]
    fn every_board_loads_and_its_map_holds() {
        let names = list_in(&src_dir());
        for want in ["qemu-virt", "qemu-virt-gicv2", "rpi3", "espressobin", "fvp"] {
            assert!(names.iter().any(|n| n == want), "board {want} missing");
        }
        for name in names {
            let b = Board::load_from(&src_dir(), &name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(b.name, name);
            // check() ran inside load_from; make sure it is not vacuous for this board.
            let loads: Vec<Region> = Item::ALL
                .iter()
                .filter_map(|&i| b.load_of(i).map(|l| l.region()))
                .collect();
            assert!(loads.len() >= 4);
            for (i, a) in loads.iter().enumerate() {
                assert!(b.memory.contains(a), "{name}: {a} outside RAM");
                for c in &loads[i + 1..] {
                    assert!(!a.overlaps(c), "{name}: {a} overlaps {c}");
                }
            }
        }
    }

    #[test]
    fn debian_kernel_fits_and_is_2mib_aligned() {
        // Debian's arm64 Image: image_size 0x2010000, text_offset 0.
        for name in list_in(&src_dir()) {
            let b = Board::load_from(&src_dir(), &name).unwrap();
            assert!(b.load.vm0_image.size >= 0x2010000, "{name}");
            assert_eq!(b.load.vm0_image.addr % 0x20_0000, 0, "{name}");
            assert_eq!(b.load.minos.addr % 0x20_0000, 0, "{name}");
        }
    }

    #[test]
    fn rpi3_bootcmd_and_env() {
        let b = Board::load_from(&src_dir(), "rpi3").unwrap();
        assert_eq!(
            b.bootcmd(false).unwrap(),
            "fatload mmc 0:1 0x28000000 minos.bin; fatload mmc 0:1 0x29e00000 minos.dtb; \
             fatload mmc 0:1 0x200000 Image; fatload mmc 0:1 0x3e00000 vm0.dtb; \
             booti 0x28000000 - 0x29e00000"
        );
        assert!(b
            .bootcmd(true)
            .unwrap()
            .contains("0x4000000 initrd.gz; booti"));
        let ub = b.uboot().unwrap();
        assert_eq!((ub.env_size, ub.env_redundant), (0x4000, false));
        assert_eq!(ub.env_file.as_deref(), Some("uboot.env"));
        assert_eq!(b.files.uboot.as_deref(), Some("kernel8.img"));
    }

    #[test]
    fn qemu_args_are_filled() {
        let b = Board::load_from(&src_dir(), "qemu-virt").unwrap();
        let vars = BTreeMap::from([
            ("uboot", "u.bin".to_string()),
            ("sdcard", "sd.img".to_string()),
            ("pflash", "pf.img".to_string()),
        ]);
        let args = b.qemu_args(&vars).unwrap();
        assert!(args.contains(&"u.bin".to_string()));
        assert!(args
            .iter()
            .any(|a| a == "if=pflash,unit=1,format=raw,file=pf.img"));
        assert!(b.qemu_args(&BTreeMap::new()).is_err());
        let fvp = Board::load_from(&src_dir(), "fvp").unwrap();
        assert!(fvp.qemu_args(&vars).is_err());
        assert!(fvp.bootcmd(false).is_err());
    }

    #[test]
    fn unknown_board_lists_known_ones() {
        let e = Board::load_from(&src_dir(), "nope")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown board `nope`") && e.contains("rpi3"),
            "{e}"
        );
        assert!(Board::load_from(&src_dir(), "../boards/rpi3").is_err());
    }

    fn with_rpi3_edit(from: &str, to: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(src_dir().join("rpi3/board.toml")).unwrap();
        assert!(text.contains(from), "{from}");
        std::fs::create_dir(dir.path().join("x")).unwrap();
        std::fs::write(dir.path().join("x/board.toml"), text.replacen(from, to, 1)).unwrap();
        Board::load_from(dir.path(), "x").unwrap_err().to_string()
    }

    #[test]
    fn bad_maps_are_refused() {
        // VM0 DTB moved into the kernel's room.
        let e = with_rpi3_edit("addr = 0x03e00000", "addr = 0x01e00000");
        assert!(e.contains("overlaps load.vm0_dtb"), "{e}");
        // VM0 image moved onto the spin tables.
        let e = with_rpi3_edit("addr = 0x00200000", "addr = 0x00000000");
        assert!(e.contains("overlaps reserved"), "{e}");
        // Hypervisor RAM past the end of memory.
        let e = with_rpi3_edit("size = 0x04000000\ndts", "size = 0x40000000\ndts");
        assert!(e.contains("not inside memory"), "{e}");
        let e = with_rpi3_edit("booti {minos}", "booti {minoz}");
        assert!(e.contains("unknown placeholder"), "{e}");
        let e = with_rpi3_edit("cpus = 4", "cpus = 4\nbogus = 1");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn region_math() {
        let a = Region {
            base: 0x1000,
            size: 0x1000,
        };
        let b = Region {
            base: 0x2000,
            size: 0x10,
        };
        assert!(!a.overlaps(&b) && !b.overlaps(&a));
        assert!(a.overlaps(&Region {
            base: 0x1fff,
            size: 1
        }));
        assert!(!a.contains(&Region {
            base: 0x1fff,
            size: 2
        }));
        let wrap = Region {
            base: u64::MAX,
            size: 2,
        };
        assert!(wrap.end().is_none() && !a.contains(&wrap));
    }
}
