pub mod bench;
pub mod chains;
pub mod demo;
pub mod derive;
pub mod local;
pub mod sign;
