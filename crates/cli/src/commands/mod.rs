pub mod demo;
pub mod derive;
