//! The `bootimg -i` report: abootimg's layout for the v0 fields (with the real second-stage
//! size), followed by what abootimg cannot show (v1/v2 fields, os_version, v3/v4 headers).

use std::io::Write;

use crate::header::{c_str, decode_os_version, Header, HeaderV3, LegacyHeader, V3_PAGE_SIZE};
use crate::layout::Layout;

fn mb(size: u64) -> String {
    format!("{:.2}", size as f64 / 1_048_576.0)
}

fn size_line(out: &mut Vec<u8>, label: &str, size: u64) {
    // Infallible: writing to a Vec.
    let _ = writeln!(out, "{label} = {size} bytes ({} MB)", mb(size));
}

fn os_version_line(out: &mut Vec<u8>, os_version: u32) {
    if os_version != 0 {
        let ((a, b, c), (y, m)) = decode_os_version(os_version);
        let _ = writeln!(out, "* os version = {a}.{b}.{c}, patch level {y}-{m:02}");
    }
}

fn cmdline_lines(out: &mut Vec<u8>, cmdline: &[u8]) {
    if cmdline.is_empty() {
        out.extend_from_slice(b"* empty cmdline\n");
    } else {
        out.extend_from_slice(b"* cmdline = ");
        out.extend_from_slice(cmdline);
        out.extend_from_slice(b"\n\n");
    }
}

fn legacy(out: &mut Vec<u8>, h: &LegacyHeader, layout: &Layout) {
    let _ = writeln!(out, "  page size  = {} bytes\n", h.page_size);
    out.extend_from_slice(b"* Boot Name = \"");
    out.extend_from_slice(c_str(&h.name));
    out.extend_from_slice(b"\"\n\n");
    size_line(out, "* kernel size      ", h.kernel_size.into());
    size_line(out, "  ramdisk size     ", h.ramdisk_size.into());
    if h.second_size != 0 {
        size_line(out, "  second stage size", h.second_size.into());
    }
    let _ = writeln!(out, "\n* load addresses:");
    let _ = writeln!(out, "  kernel:       {:#010x}", h.kernel_addr);
    let _ = writeln!(out, "  ramdisk:      {:#010x}", h.ramdisk_addr);
    if h.second_size != 0 {
        let _ = writeln!(out, "  second stage: {:#010x}", h.second_addr);
    }
    let _ = writeln!(out, "  tags:         {:#010x}\n", h.tags_addr);
    cmdline_lines(out, c_str(&h.cmdline));
    out.extend_from_slice(b"* id = ");
    for word in h.id.chunks_exact(4) {
        let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        let _ = write!(out, "0x{w:08x} ");
    }
    out.extend_from_slice(b"\n\n");

    // Beyond abootimg: only printed when there is something to say.
    let extra = c_str(&h.extra_cmdline);
    if h.cmdline.iter().all(|&b| b != 0) && !extra.is_empty() {
        out.extend_from_slice(b"* extra cmdline = ");
        out.extend_from_slice(extra);
        out.push(b'\n');
    }
    if h.header_version != 0 {
        let _ = writeln!(
            out,
            "* header version = {} (header size {} bytes)",
            h.header_version, h.header_size
        );
    }
    os_version_line(out, h.os_version);
    if h.header_version >= 1 {
        let _ = writeln!(
            out,
            "  recovery dtbo size = {} bytes, offset {:#x}",
            h.recovery_dtbo_size, h.recovery_dtbo_offset
        );
    }
    if h.header_version >= 2 {
        let _ = writeln!(
            out,
            "  dtb size = {} bytes at offset {:#x}, load address {:#x}",
            h.dtb_size, layout.dtb.offset, h.dtb_addr
        );
    }
    if h.ramdisk_size == 0 {
        let _ = writeln!(
            out,
            "* no ramdisk: abootimg rejects this image (\"ramdisk size is null\"), mvm accepts it"
        );
    }
}

fn v3(out: &mut Vec<u8>, h: &HeaderV3) {
    let _ = writeln!(
        out,
        "  page size  = {} bytes (fixed in v3/v4)\n",
        V3_PAGE_SIZE
    );
    let _ = writeln!(
        out,
        "* header version = {} (header size {} bytes)",
        h.header_version, h.header_size
    );
    os_version_line(out, h.os_version);
    out.push(b'\n');
    size_line(out, "* kernel size      ", h.kernel_size.into());
    size_line(out, "  ramdisk size     ", h.ramdisk_size.into());
    if h.header_version >= 4 {
        size_line(out, "  signature size   ", h.signature_size.into());
    }
    out.push(b'\n');
    cmdline_lines(out, c_str(&h.cmdline));
    let _ = writeln!(
        out,
        "* no load addresses, second stage or dtb: v3/v4 images keep them in vendor_boot"
    );
}

/// Renders the report for an image with this header and layout, read from `file_name`
/// (`file_len` bytes).
pub fn describe(header: &Header, layout: &Layout, file_name: &str, file_len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = writeln!(out, "\nAndroid Boot Image Info:\n");
    // abootimg prints "[block device]" or an empty string after the name: keep its blank.
    let _ = writeln!(out, "* file name = {file_name} \n");
    size_line(&mut out, "* image size", file_len);
    match header {
        Header::Legacy(h) => legacy(&mut out, h, layout),
        Header::V3(h) => v3(&mut out, h),
    }
    out
}
