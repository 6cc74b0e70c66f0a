//! rule-lambda
