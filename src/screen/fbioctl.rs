//! Linux only: the framebuffer geometry ioctls (`FBIOGET_VSCREENINFO`, `FBIOGET_FSCREENINFO`)
//! and the kernel structures they fill (`linux/fb.h`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use super::fb_format::{Bitfield, FbFormat};

const FBIOGET_VSCREENINFO: u32 = 0x4600;
const FBIOGET_FSCREENINFO: u32 = 0x4602;
const FB_TYPE_PACKED_PIXELS: u32 = 0;
const FB_VISUAL_TRUECOLOR: u32 = 2;
const FB_VISUAL_DIRECTCOLOR: u32 = 4;

/// `struct fb_bitfield`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct FbBitfield {
    offset: u32,
    length: u32,
    msb_right: u32,
}

/// `struct fb_var_screeninfo`. Every field mirrors the kernel's layout; not all are read.
#[repr(C)]
#[allow(dead_code)]
#[derive(Default)]
struct FbVarScreeninfo {
    xres: u32,
    yres: u32,
    xres_virtual: u32,
    yres_virtual: u32,
    xoffset: u32,
    yoffset: u32,
    bits_per_pixel: u32,
    grayscale: u32,
    red: FbBitfield,
    green: FbBitfield,
    blue: FbBitfield,
    transp: FbBitfield,
    nonstd: u32,
    activate: u32,
    height: u32,
    width: u32,
    accel_flags: u32,
    pixclock: u32,
    left_margin: u32,
    right_margin: u32,
    upper_margin: u32,
    lower_margin: u32,
    hsync_len: u32,
    vsync_len: u32,
    sync: u32,
    vmode: u32,
    rotate: u32,
    colorspace: u32,
    reserved: [u32; 4],
}

/// `struct fb_fix_screeninfo`. Every field mirrors the kernel's layout; not all are read.
#[repr(C)]
#[allow(dead_code)]
#[derive(Default)]
struct FbFixScreeninfo {
    id: [u8; 16],
    smem_start: libc::c_ulong,
    smem_len: u32,
    type_: u32,
    type_aux: u32,
    visual: u32,
    xpanstep: u16,
    ypanstep: u16,
    ywrapstep: u16,
    line_length: u32,
    mmio_start: libc::c_ulong,
    mmio_len: u32,
    accel: u32,
    capabilities: u16,
    reserved: [u16; 2],
}

/// What the runtime needs from the two structures.
pub(crate) struct FbInfo {
    pub xres: u32,
    pub yres: u32,
    pub xoffset: u32,
    pub yoffset: u32,
    pub line_length: usize,
    pub format: FbFormat,
}

/// Reads `file`'s geometry and pixel format. Errors (not a framebuffer, a palette or
/// non-packed format) are one line, to be prefixed with the path by the caller.
pub(crate) fn query(file: &File) -> io::Result<FbInfo> {
    let fd = file.as_raw_fd();
    let mut var = FbVarScreeninfo::default();
    // SAFETY: FBIOGET_VSCREENINFO writes one `struct fb_var_screeninfo` into the pointer, which
    // points to a live, writable value of that exact `repr(C)` layout; `fd` stays open meanwhile.
    if unsafe { libc::ioctl(fd, FBIOGET_VSCREENINFO as _, &mut var as *mut FbVarScreeninfo) } < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("not a framebuffer (FBIOGET_VSCREENINFO: {e})")));
    }
    let mut fix = FbFixScreeninfo::default();
    // SAFETY: as above, for FBIOGET_FSCREENINFO and `struct fb_fix_screeninfo`.
    if unsafe { libc::ioctl(fd, FBIOGET_FSCREENINFO as _, &mut fix as *mut FbFixScreeninfo) } < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("not a framebuffer (FBIOGET_FSCREENINFO: {e})")));
    }
    let unsupported = |what: String| Err(io::Error::new(io::ErrorKind::Unsupported, what));
    if fix.type_ != FB_TYPE_PACKED_PIXELS {
        return unsupported(format!("unsupported framebuffer type {} (only packed pixels)", fix.type_));
    }
    if fix.visual != FB_VISUAL_TRUECOLOR && fix.visual != FB_VISUAL_DIRECTCOLOR {
        return unsupported(format!("unsupported framebuffer visual {} (only true colour)", fix.visual));
    }
    if var.grayscale != 0 {
        return unsupported("unsupported framebuffer: grayscale or FOURCC format".into());
    }
    if [var.red, var.green, var.blue, var.transp].iter().any(|f| f.msb_right != 0) {
        return unsupported("unsupported framebuffer: bit-reversed colour channels".into());
    }
    let field = |f: FbBitfield| Bitfield::new(f.offset, f.length);
    Ok(FbInfo {
        xres: var.xres,
        yres: var.yres,
        xoffset: var.xoffset,
        yoffset: var.yoffset,
        line_length: fix.line_length as usize,
        format: FbFormat {
            bits_per_pixel: var.bits_per_pixel,
            red: field(var.red),
            green: field(var.green),
            blue: field(var.blue),
            transp: field(var.transp),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_match_the_kernel_abi() {
        // linux/fb.h: fb_var_screeninfo is 160 bytes; fb_fix_screeninfo is 68 (32-bit) / 80 (64-bit).
        assert_eq!(std::mem::size_of::<FbVarScreeninfo>(), 160);
        let expected_fix = if std::mem::size_of::<libc::c_ulong>() == 8 { 80 } else { 68 };
        assert_eq!(std::mem::size_of::<FbFixScreeninfo>(), expected_fix);
    }

    #[test]
    fn regular_file_is_not_a_framebuffer() {
        let path = std::env::temp_dir().join(format!("panderm-not-fb-{}", std::process::id()));
        let file = std::fs::write(&path, b"x").and_then(|()| File::open(&path));
        let msg = file.and_then(|f| query(&f).map(|_| ())).err().map(|e| e.to_string()).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        assert!(msg.starts_with("not a framebuffer (FBIOGET_VSCREENINFO"), "{msg}");
    }
}
