//! `mkimage initramfs`: a reproducible newc cpio archive, gzip-compressed.
//!
//! Reproducible means the bytes depend only on the names, types, permissions and contents:
//! entries sorted by name, owner 0:0, every mtime SOURCE_DATE_EPOCH (or 0), inode numbers
//! assigned in order, and a gzip header without a name or time.

mod newc;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

pub use newc::{Entry, Kind};

#[derive(clap::Args)]
#[command(
    after_long_help = "Pack a directory (and/or single files) into a newc cpio archive the \
    Linux kernel takes as its initramfs, gzip-compressed. Every entry is owned by 0:0 and \
    dated SOURCE_DATE_EPOCH (or 0), so the same inputs always give the same bytes. \
    Example for a busybox initramfs: mkimage initramfs -o initrd.gz --exec bin/busybox=BUSYBOX \
    --exec init=my-init.sh --symlink bin/sh=busybox --dir proc --dir sys \
    --node dev/console=c:5:1"
)]
pub struct Args {
    /// Directory whose contents become the archive's root
    dir: Option<PathBuf>,
    /// Output file (`-` writes standard output)
    #[arg(short, long)]
    output: PathBuf,
    /// Add a host file at DEST with its own permissions (DEST=SRC)
    #[arg(long, value_name = "DEST=SRC")]
    file: Vec<String>,
    /// Add a host file at DEST, executable (mode 0755)
    #[arg(long, value_name = "DEST=SRC")]
    exec: Vec<String>,
    /// Add a symbolic link DEST pointing to TARGET
    #[arg(long, value_name = "DEST=TARGET")]
    symlink: Vec<String>,
    /// Add an empty directory (mode 0755)
    #[arg(long = "dir", value_name = "DEST")]
    dir_entry: Vec<String>,
    /// Add a device node (mode 0600) without being root, e.g. dev/console=c:5:1
    #[arg(long, value_name = "DEST=c|b:MAJOR:MINOR")]
    node: Vec<String>,
    /// Write the plain cpio archive, without gzip
    #[arg(long)]
    no_compress: bool,
}

/// What an entry's data comes from.
#[derive(Debug, Clone)]
pub enum Source {
    None,
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One archive member before inode numbers are assigned.
#[derive(Debug, Clone)]
pub struct Member {
    pub kind: Kind,
    pub perm: u32,
    pub rdev: (u32, u32),
    pub source: Source,
    pub size: u64,
    /// (device, inode) of a regular file with several names in the source tree.
    pub hardlink: Option<(u64, u64)>,
}

/// Archive members by path (no leading `/` or `./`), sorted.
pub type Members = BTreeMap<String, Member>;

fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)) as u32
}

fn dev_minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)) as u32
}

/// Normalises an archive path: relative, `/`-separated, no `.`/`..` components.
fn archive_path(p: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        bail!("`{p}` is not a usable path inside the archive");
    }
    Ok(parts.join("/"))
}

fn from_metadata(path: &Path, md: &std::fs::Metadata) -> anyhow::Result<Member> {
    let ft = md.file_type();
    let (kind, source, size) = if ft.is_dir() {
        (Kind::Dir, Source::None, 0)
    } else if ft.is_file() {
        (Kind::File, Source::File(path.to_path_buf()), md.len())
    } else if ft.is_symlink() {
        let t = std::fs::read_link(path)
            .with_context(|| format!("cannot read link {}", path.display()))?;
        let bytes = t.into_os_string().into_encoded_bytes();
        let n = bytes.len() as u64;
        (Kind::Symlink, Source::Bytes(bytes), n)
    } else if ft.is_char_device() {
        (Kind::Char, Source::None, 0)
    } else if ft.is_block_device() {
        (Kind::Block, Source::None, 0)
    } else if ft.is_fifo() {
        (Kind::Fifo, Source::None, 0)
    } else if ft.is_socket() {
        (Kind::Socket, Source::None, 0)
    } else {
        bail!("{}: unsupported file type", path.display());
    };
    Ok(Member {
        kind,
        perm: md.mode() & 0o7777,
        rdev: (dev_major(md.rdev()), dev_minor(md.rdev())),
        source,
        size,
        hardlink: (kind == Kind::File && md.nlink() > 1).then(|| (md.dev(), md.ino())),
    })
}

/// Adds everything below `root` (not `root` itself) to `out`.
pub fn scan_dir(root: &Path, out: &mut Members) -> anyhow::Result<()> {
    fn go(root: &Path, dir: &Path, out: &mut Members) -> anyhow::Result<()> {
        let rd =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for e in rd {
            let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
            let path = e.path();
            let md = std::fs::symlink_metadata(&path)
                .with_context(|| format!("cannot stat {}", path.display()))?;
            let rel = path.strip_prefix(root).expect("below root");
            let name = rel
                .to_str()
                .with_context(|| format!("{}: name is not UTF-8", path.display()))?
                .to_string();
            let m = from_metadata(&path, &md)?;
            let is_dir = m.kind == Kind::Dir;
            out.insert(name, m);
            if is_dir {
                go(root, &path, out)?;
            }
        }
        Ok(())
    }
    let md = std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
    if !md.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    go(root, root, out)
}

fn split_pair<'a>(s: &'a str, what: &str) -> anyhow::Result<(&'a str, &'a str)> {
    s.split_once('=')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .with_context(|| format!("--{what} `{s}`: expected DEST=VALUE"))
}

/// Inserts `m` at `name`, refusing to replace an entry of a different kind and creating
/// missing parent directories (mode 0755).
pub fn insert(out: &mut Members, name: &str, m: Member) -> anyhow::Result<()> {
    let name = archive_path(name)?;
    let mut parent = String::new();
    for comp in name
        .split('/')
        .collect::<Vec<_>>()
        .split_last()
        .expect("non-empty")
        .1
    {
        if !parent.is_empty() {
            parent.push('/');
        }
        parent.push_str(comp);
        match out.get(&parent) {
            Some(p) if p.kind != Kind::Dir => bail!("`{parent}` is not a directory"),
            Some(_) => {}
            None => {
                out.insert(parent.clone(), dir_member());
            }
        }
    }
    if let Some(old) = out.get(&name) {
        if old.kind == Kind::Dir || m.kind == Kind::Dir {
            if old.kind != m.kind {
                bail!("`{name}` is given twice, as a directory and as a file");
            }
            return Ok(());
        }
    }
    out.insert(name, m);
    Ok(())
}

fn dir_member() -> Member {
    Member {
        kind: Kind::Dir,
        perm: 0o755,
        rdev: (0, 0),
        source: Source::None,
        size: 0,
        hardlink: None,
    }
}

/// `c:MAJOR:MINOR` or `b:MAJOR:MINOR`.
fn device_member(spec: &str) -> anyhow::Result<Member> {
    let bad = || anyhow::anyhow!("--node `{spec}`: expected c:MAJOR:MINOR or b:MAJOR:MINOR");
    let mut it = spec.split(':');
    let kind = match it.next() {
        Some("c") => Kind::Char,
        Some("b") => Kind::Block,
        _ => return Err(bad()),
    };
    let mut num =
        || -> anyhow::Result<u32> { it.next().ok_or_else(bad)?.parse().map_err(|_| bad()) };
    let (major, minor) = (num()?, num()?);
    if it.next().is_some() {
        return Err(bad());
    }
    Ok(Member {
        kind,
        perm: 0o600,
        rdev: (major, minor),
        source: Source::None,
        size: 0,
        hardlink: None,
    })
}

fn host_file(src: &str, exec: bool) -> anyhow::Result<Member> {
    let p = Path::new(src);
    let md = std::fs::metadata(p).with_context(|| format!("cannot read {src}"))?;
    if !md.is_file() {
        bail!("{src} is not a regular file");
    }
    let mut m = from_metadata(p, &md)?;
    if exec {
        m.perm = 0o755;
    }
    Ok(m)
}

/// The members `args` describe.
fn collect(args: &Args) -> anyhow::Result<Members> {
    let mut members = Members::new();
    if let Some(d) = &args.dir {
        scan_dir(d, &mut members)?;
    }
    for (list, exec) in [(&args.file, false), (&args.exec, true)] {
        for f in list {
            let (dest, src) = split_pair(f, if exec { "exec" } else { "file" })?;
            insert(&mut members, dest, host_file(src, exec)?)?;
        }
    }
    for s in &args.symlink {
        let (dest, target) = split_pair(s, "symlink")?;
        let bytes = target.as_bytes().to_vec();
        let m = Member {
            kind: Kind::Symlink,
            perm: 0o777,
            rdev: (0, 0),
            size: bytes.len() as u64,
            source: Source::Bytes(bytes),
            hardlink: None,
        };
        insert(&mut members, dest, m)?;
    }
    for d in &args.dir_entry {
        insert(&mut members, d, dir_member())?;
    }
    for n in &args.node {
        let (dest, spec) = split_pair(n, "node")?;
        insert(&mut members, dest, device_member(spec)?)?;
    }
    if members.is_empty() {
        bail!("nothing to pack: give a DIR or --file/--exec/--symlink/--dir/--node");
    }
    Ok(members)
}

/// SOURCE_DATE_EPOCH, or 0 when unset; a malformed value is an error, not a silent 0.
pub fn source_date_epoch() -> anyhow::Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s
            .trim()
            .parse::<u32>()
            .with_context(|| format!("SOURCE_DATE_EPOCH `{s}` is not a time in seconds")),
        Err(_) => Ok(0),
    }
}

/// Writes the archive of `members` to `w`; `progress` is told how many data bytes went out.
pub fn write_archive<W: Write>(
    members: &Members,
    mtime: u32,
    w: &mut W,
    progress: &mut dyn FnMut(u64),
) -> anyhow::Result<()> {
    let mut out = newc::Writer::new(w);
    // Hard links, as GNU cpio writes them: every name shares one inode number and the link
    // count, and only the last name carries the data. (--file/--exec copies have no links.)
    let mut groups: BTreeMap<(u64, u64), (u32, &str)> = BTreeMap::new();
    for (name, m) in members {
        if let (Some(k), Source::File(_)) = (m.hardlink, &m.source) {
            let g = groups.entry(k).or_insert((0, name));
            g.0 += 1;
            g.1 = name;
        }
    }
    let mut inos: BTreeMap<(u64, u64), u32> = BTreeMap::new();
    // The root directory first, so the kernel's rootfs gets its mode too.
    out.entry(
        &Entry::new(".", Kind::Dir, 0o755, mtime, 0),
        &mut std::io::empty(),
    )?;
    for (name, m) in members {
        let mut e = Entry::new(name, m.kind, m.perm, mtime, m.size);
        e.rdev = m.rdev;
        let mut carries_data = true;
        if let Some((count, last)) = m.hardlink.and_then(|k| groups.get(&k).copied()) {
            if count > 1 {
                let k = m.hardlink.expect("grouped");
                let ino = *inos.entry(k).or_insert_with(|| out.reserve_ino());
                e.link = Some((ino, count));
                carries_data = last == name.as_str();
                if !carries_data {
                    e.size = 0;
                }
            }
        }
        match &m.source {
            _ if !carries_data => out.entry(&e, &mut std::io::empty())?,
            Source::None => out.entry(&e, &mut std::io::empty())?,
            Source::Bytes(b) => out.entry(&e, &mut b.as_slice())?,
            Source::File(p) => {
                let f = File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
                // A file that grows while we read must not corrupt the archive: read exactly
                // the size in the header and check nothing was missing.
                out.entry(&e, &mut f.take(m.size))
                    .with_context(|| format!("{}", p.display()))?
            }
        }
        progress(e.size);
    }
    out.finish()?;
    Ok(())
}

/// Archive (and compress) `members` into `out` through a temporary file and a rename.
pub fn build(members: &Members, out: &Path, compress: bool) -> anyhow::Result<()> {
    let mtime = source_date_epoch()?;
    // Hard-linked files count once per name here; the bar may finish early, never overflow.
    let total: u64 = members.values().map(|m| m.size).sum();
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
                .expect("valid template"),
        );
        b.set_message("initramfs");
        Some(b)
    } else {
        None
    };
    let mut tick = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n)
        }
    };
    let write = |w: &mut dyn Write, tick: &mut dyn FnMut(u64)| -> anyhow::Result<()> {
        if compress {
            // No file name and mtime 0 in the gzip header: the bytes depend on the contents only.
            let mut gz = flate2::GzBuilder::new()
                .mtime(0)
                .operating_system(3)
                .write(w, flate2::Compression::best());
            write_archive(members, mtime, &mut gz, tick)?;
            gz.finish()?;
        } else {
            let mut w = w;
            write_archive(members, mtime, &mut w, tick)?;
        }
        Ok(())
    };
    if out == Path::new("-") {
        let stdout = std::io::stdout();
        let mut lock = BufWriter::new(stdout.lock());
        write(&mut lock, &mut tick)?;
        lock.flush()?;
    } else {
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = crate::env::output_tempfile(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        {
            let mut bw = BufWriter::new(tmp.as_file());
            write(&mut bw, &mut tick)?;
            bw.flush()?;
        }
        tmp.persist(out)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let members = collect(&args)?;
    build(&members, &args.output, !args.no_compress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_parents() {
        let mut m = Members::new();
        let link = |t: &str| Member {
            kind: Kind::Symlink,
            perm: 0o777,
            rdev: (0, 0),
            size: t.len() as u64,
            source: Source::Bytes(t.as_bytes().to_vec()),
            hardlink: None,
        };
        insert(&mut m, "/bin/sh", link("busybox")).unwrap();
        insert(&mut m, "./usr//bin/x", link("y")).unwrap();
        let names: Vec<&str> = m.keys().map(|s| s.as_str()).collect();
        assert_eq!(names, ["bin", "bin/sh", "usr", "usr/bin", "usr/bin/x"]);
        assert!(insert(&mut m, "bin/sh/x", link("z")).is_err());
        assert!(insert(&mut m, "../x", link("z")).is_err());
        assert!(insert(&mut m, "bin", link("z")).is_err());
        assert!(archive_path("/").is_err());
    }

    #[test]
    fn device_numbers() {
        // makedev(8, 1) and a large one, as glibc encodes them.
        assert_eq!((dev_major(0x801), dev_minor(0x801)), (8, 1));
        let rdev: u64 = (0x123 << 8) | 0x45 | (0xabcd_0000_u64 << 32) | (0x0006_7800 << 12);
        assert_eq!(dev_major(rdev), 0xabcd_0123);
        assert_eq!(dev_minor(rdev), 0x0006_7845);
    }

    #[test]
    fn archive_is_sorted_and_reproducible() {
        let mut m = Members::new();
        insert(
            &mut m,
            "b",
            Member {
                kind: Kind::File,
                perm: 0o644,
                rdev: (0, 0),
                size: 5,
                source: Source::Bytes(b"hello".to_vec()),
                hardlink: None,
            },
        )
        .unwrap();
        insert(&mut m, "a", dir_member()).unwrap();
        let mut one = Vec::new();
        write_archive(&m, 7, &mut one, &mut |_| {}).unwrap();
        let mut two = Vec::new();
        write_archive(&m, 7, &mut two, &mut |_| {}).unwrap();
        assert_eq!(one, two);
        let text = String::from_utf8_lossy(&one);
        let (a, b) = (text.find("a\0").unwrap(), text.find("b\0").unwrap());
        assert!(a < b && text.contains("hello") && text.contains("TRAILER!!!"));
        assert_eq!(one.len() % 4, 0);
    }

    /// (name, ino, nlink, size) of every entry of a newc archive.
    fn headers(a: &[u8]) -> Vec<(String, u32, u32, u32)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 110 <= a.len() {
            let h = std::str::from_utf8(&a[at..at + 110]).unwrap();
            let f = |i: usize| u32::from_str_radix(&h[6 + 8 * i..14 + 8 * i], 16).unwrap();
            let (ino, nlink, size, namesize) = (f(0), f(4), f(6), f(11) as usize);
            let name = String::from_utf8(a[at + 110..at + 110 + namesize - 1].to_vec()).unwrap();
            at += (110 + namesize).div_ceil(4) * 4 + (size as usize).div_ceil(4) * 4;
            if name == "TRAILER!!!" {
                break;
            }
            out.push((name, ino, nlink, size));
        }
        out
    }

    #[test]
    fn hard_links_share_an_inode_and_one_copy_of_the_data() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"twelve bytes").unwrap();
        std::fs::hard_link(d.path().join("a"), d.path().join("b")).unwrap();
        std::fs::hard_link(d.path().join("a"), d.path().join("c")).unwrap();
        std::fs::write(d.path().join("d"), b"x").unwrap();
        let mut m = Members::new();
        scan_dir(d.path(), &mut m).unwrap();
        let mut out = Vec::new();
        write_archive(&m, 0, &mut out, &mut |_| {}).unwrap();
        let h = headers(&out);
        let names: Vec<&str> = h.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, [".", "a", "b", "c", "d"]);
        let (a, b, c, dd) = (&h[1], &h[2], &h[3], &h[4]);
        assert!(a.1 == b.1 && b.1 == c.1 && c.1 != dd.1, "{h:?}");
        assert_eq!((a.2, b.2, c.2, dd.2), (3, 3, 3, 1));
        assert_eq!((a.3, b.3, c.3, dd.3), (0, 0, 12, 1));
        // Inode numbers stay unique across entries that are not links.
        let mut inos: Vec<u32> = h.iter().map(|e| e.1).collect();
        inos.dedup();
        inos.sort();
        inos.dedup();
        assert_eq!(inos.len(), 3);
    }
}
