//! Action fees from nearcore's parameter table (protocol 88).

use near_parameters::{ActionCosts, RuntimeFeesConfig};
use near_primitives::account::AccessKeyPermission;
use near_primitives::action::Action;

/// Gas of one action: (send fee, exec fee, gas attached to a function call).
pub fn action_gas(fees: &RuntimeFeesConfig, action: &Action, sir: bool) -> (u64, u64, u64) {
    let f = |c: ActionCosts| {
        let fee = fees.fee(c);
        (fee.send_fee(sir).gas.as_gas(), fee.exec_fee().gas.as_gas())
    };
    let per_byte = |c: ActionCosts, n: u64| {
        let (s, e) = f(c);
        (s.saturating_mul(n), e.saturating_mul(n))
    };
    let add = |a: (u64, u64), b: (u64, u64)| (a.0.saturating_add(b.0), a.1.saturating_add(b.1));
    let (send, exec, attached) = match action {
        Action::CreateAccount(_) => {
            let (s, e) = f(ActionCosts::create_account);
            (s, e, 0)
        }
        Action::DeployContract(d) => {
            let (s, e) = add(
                f(ActionCosts::deploy_contract_base),
                per_byte(ActionCosts::deploy_contract_byte, d.code.len() as u64),
            );
            (s, e, 0)
        }
        Action::FunctionCall(fc) => {
            let n = (fc.method_name.len() + fc.args.len()) as u64;
            let (s, e) = add(
                f(ActionCosts::function_call_base),
                per_byte(ActionCosts::function_call_byte, n),
            );
            (s, e, fc.gas.as_gas())
        }
        Action::Transfer(_) => {
            let (s, e) = f(ActionCosts::transfer);
            (s, e, 0)
        }
        Action::AddKey(a) => {
            let (s, e) = match &a.access_key.permission {
                AccessKeyPermission::FunctionCall(p) => {
                    let n: usize = p.method_names.iter().map(|m| m.len() + 1).sum();
                    add(
                        f(ActionCosts::add_function_call_key_base),
                        per_byte(ActionCosts::add_function_call_key_byte, n as u64),
                    )
                }
                _ => f(ActionCosts::add_full_access_key),
            };
            (s, e, 0)
        }
        Action::DeleteKey(_) => {
            let (s, e) = f(ActionCosts::delete_key);
            (s, e, 0)
        }
        Action::DeleteAccount(_) => {
            let (s, e) = f(ActionCosts::delete_account);
            (s, e, 0)
        }
        Action::Stake(_) => {
            let (s, e) = f(ActionCosts::stake);
            (s, e, 0)
        }
        _ => (0, 0, 0),
    };
    (send, exec, attached)
}

/// Gas to buy for a new action receipt with `actions`: (burnt at once, prepaid for execution).
pub fn receipt_gas(fees: &RuntimeFeesConfig, actions: &[Action], sir: bool) -> (u64, u64) {
    let base = fees.fee(ActionCosts::new_action_receipt);
    let mut burnt = base.send_fee(sir).gas.as_gas();
    let mut prepaid = base.exec_fee().gas.as_gas();
    for a in actions {
        let (s, e, g) = action_gas(fees, a, sir);
        burnt = burnt.saturating_add(s);
        prepaid = prepaid.saturating_add(e).saturating_add(g);
    }
    (burnt, prepaid)
}

/// Exec fee of the receipt itself (charged when it runs).
pub fn receipt_exec_base(fees: &RuntimeFeesConfig) -> u64 {
    fees.fee(ActionCosts::new_action_receipt)
        .exec_fee()
        .gas
        .as_gas()
}

/// Tokens deposited by `actions` (transfers and function call deposits).
pub fn total_deposit(actions: &[Action]) -> u128 {
    actions
        .iter()
        .map(|a| match a {
            Action::Transfer(t) => t.deposit.as_yoctonear(),
            Action::FunctionCall(fc) => fc.deposit.as_yoctonear(),
            _ => 0,
        })
        .fold(0u128, |acc, d| acc.saturating_add(d))
}
