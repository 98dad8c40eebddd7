//! What socket calls tell the fd table, whichever way the program makes them: through the
//! hooked functions (the `socket` subsystem) or the raw `syscall()` (`os::syscall`).

use super::{Kind, born};
use libc::{c_int, msghdr};

/// The bits of a `type` argument that name the type; SOCK_NONBLOCK and SOCK_CLOEXEC are flags
/// above them (the kernel's SOCK_TYPE_MASK, which libc does not export).
const SOCK_TYPE_MASK: c_int = 0xf;

impl Kind {
    /// The kind of socket a `socket`/`socketpair` `type` argument makes. A seqpacket socket
    /// keeps record boundaries, so a write is one record, as for datagrams.
    pub fn of_socket_type(ty: c_int) -> Kind {
        if ty & SOCK_TYPE_MASK == libc::SOCK_STREAM {
            Kind::StreamSocket
        } else {
            Kind::DatagramSocket
        }
    }
}

/// Descriptors that arrived in SCM_RIGHTS messages got numbers whose old state is stale.
///
/// # Safety
/// `msg` was filled by a successful recvmsg.
pub unsafe fn forget_received_fds(msg: *const msghdr) {
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<c_int>();
                let count =
                    ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / size_of::<c_int>();
                for i in 0..count {
                    born(data.add(i).read_unaligned(), Kind::Unknown);
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
}

/// Does `setsockopt(level, name)` set a socket timeout, which bounds green waits? SO_RCVTIMEO
/// and SO_SNDTIMEO, or the `_NEW` forms glibc passes for a 64-bit `time_t`.
pub fn sets_timeout(level: c_int, name: c_int) -> bool {
    level == libc::SOL_SOCKET
        && matches!(
            name,
            libc::SO_RCVTIMEO | libc::SO_SNDTIMEO | libc::SO_RCVTIMEO_NEW | libc::SO_SNDTIMEO_NEW
        )
}
