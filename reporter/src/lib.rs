//! The reporter: weekly and monthly auditor reports (issue 4). Nothing here yet.
