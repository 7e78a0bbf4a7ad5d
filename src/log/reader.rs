//! Reading the log in seq order across live and archived days.
