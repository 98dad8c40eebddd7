//! The patchable subsystems, named after eventlet's `monkey_patch` keyword arguments, and sets
//! of them: what the configuration asks for and what `patch` keeps (plain data, so both can
//! name them).

/// A patchable subsystem, named after eventlet's `monkey_patch` keyword arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Subsystem {
    Os = 0,
    Select = 1,
    Socket = 2,
    Thread = 3,
    Time = 4,
}

impl Subsystem {
    pub const ALL: [Subsystem; 5] = [
        Subsystem::Os,
        Subsystem::Select,
        Subsystem::Socket,
        Subsystem::Thread,
        Subsystem::Time,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Subsystem::Os => "os",
            Subsystem::Select => "select",
            Subsystem::Socket => "socket",
            Subsystem::Thread => "thread",
            Subsystem::Time => "time",
        }
    }

    pub const fn env_var(self) -> &'static str {
        match self {
            Subsystem::Os => "GREENWORLD_OS",
            Subsystem::Select => "GREENWORLD_SELECT",
            Subsystem::Socket => "GREENWORLD_SOCKET",
            Subsystem::Thread => "GREENWORLD_THREAD",
            Subsystem::Time => "GREENWORLD_TIME",
        }
    }

    pub fn from_name(name: &str) -> Option<Subsystem> {
        Subsystem::ALL.into_iter().find(|s| s.name() == name)
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of subsystems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubsystemSet(pub(crate) u8);

impl SubsystemSet {
    pub const EMPTY: SubsystemSet = SubsystemSet(0);
    pub const ALL: SubsystemSet = SubsystemSet(0b1_1111);

    pub fn insert(&mut self, sub: Subsystem) {
        self.0 |= sub.bit();
    }

    pub const fn contains(self, sub: Subsystem) -> bool {
        self.0 & sub.bit() != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn without(self, other: SubsystemSet) -> SubsystemSet {
        SubsystemSet(self.0 & !other.0)
    }
}
