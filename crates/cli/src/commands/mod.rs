pub mod chains;
pub mod demo;
pub mod derive;
