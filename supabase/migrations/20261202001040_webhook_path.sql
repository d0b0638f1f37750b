-- The webhook path in fewer round trips (bench:webhook, docs/benchmarks.md).
--
-- 1. private.apply_verified_payment: what the functions did in three SQL calls after Paystack's verify
--    answer (apply_payment; save_payment_method; budget_push_target, the first read of pushBudget) in one.
--    The money logic stays in private.apply_payment, unchanged; this only calls it, saves the card and
--    returns the key's push target read in the same transaction.

-- ---------------------------------------------------------------- 1. one call per verified payment

-- p_authorization: the authorization object of the verify answer (null: none). A card that cannot be saved
-- never undoes a credit: its error is returned (card_error) and the payment stands.
create function private.apply_verified_payment(
  p_reference text,
  p_status text,
  p_amount_subunits integer,
  p_requested_amount_subunits integer,
  p_currency text,
  p_domain text,
  p_expected_domain text,
  p_provider_transaction_id bigint,
  p_paid_at timestamptz,
  p_delivery_id bigint,
  p_channel text,
  p_authorization jsonb
) returns table (outcome text, reason text, key_id uuid, card_saved boolean, card_error text, key_value text,
                 target_max_budget numeric, budget_version bigint, status text, sync_status text,
                 litellm_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_applied record;
  v_saved boolean := false;
  v_error text;
begin
  select * into v_applied from private.apply_payment(p_reference, p_status, p_amount_subunits,
    p_requested_amount_subunits, p_currency, p_domain, p_expected_domain, p_provider_transaction_id, p_paid_at,
    p_delivery_id, p_channel) a;
  -- Again on a duplicate: the first delivery may have credited without saving (it is idempotent).
  if v_applied.outcome in ('credited', 'duplicate') and p_authorization is not null then
    begin
      v_saved := private.save_payment_method(p_reference, p_authorization) is not null;
    exception when others then
      v_error := left(sqlerrm, 300);
    end;
  end if;
  return query
  select v_applied.outcome, v_applied.reason, v_applied.key_id, v_saved, v_error, k.key_value,
         v_applied.target_max_budget, k.budget_version, k.status, k.sync_status, k.litellm_max_budget
    from (select 1) one left join public.api_keys k on k.id = v_applied.key_id;
end
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
