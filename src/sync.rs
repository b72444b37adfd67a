pub mod mirror;
pub mod planner;
