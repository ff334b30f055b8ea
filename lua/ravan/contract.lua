-- The API's response, stated once: each record's fields, in the order of
-- the contract's schema (phone-history.openapi.yaml), with their types.
-- Decoding (which fields it must check and convert), the CLI's output (key
-- order, CSV columns) and the sync's schema and rows derive from it.
--
-- Types: "string"; "time" (an RFC 3339 string); "boolean"; "integer" (must
-- be integral: the pager's arithmetic and users' `%d` rely on it);
-- "number"; "decimal" (money: an exact decimal string, never a float);
-- "object" (a JSON object, of a record's shape or open); "array" (of a
-- record).
--
-- A record is also a shape for `ravan.json`: `keys` in order, `fields`
-- giving the shape of each object or array field.

require("ravan.interpreted")()
local M = {}

-- Builds a record from { name, type [, record] } entries.
local function record(list)
  local r = { keys = {}, type_of = {}, fields = {}, integers = {}, decimals = {} }
  for i, f in ipairs(list) do
    local name, kind, of = f[1], f[2], f[3]
    r.keys[i] = name
    r.type_of[name] = kind
    if kind == "array" then
      r.fields[name] = { items = of }
    elseif kind == "object" then
      -- An open object has no documented keys; still an object when empty.
      r.fields[name] = of or { keys = {} }
    elseif kind == "integer" then
      r.integers[#r.integers + 1] = name
    elseif kind == "decimal" then
      r.decimals[#r.decimals + 1] = name
    end
  end
  return r
end

M.MESSAGE = record {
  { "role", "string" },
  { "content", "string" },
}

M.TRANSCRIPT = record {
  { "id", "string" },
  { "call_session_id", "string" },
  { "message", "object", M.MESSAGE },
  { "timestamp_ms", "integer" },
  { "created_at", "time" },
}

M.CREDIT_BREAKDOWN = record {
  { "model_credits", "number" },
  { "provider_credits", "number" },
  { "telephony_base_credits", "number" },
}

M.CALL = record {
  { "id", "string" },
  { "agent_id", "string" },
  { "agent_name", "string" },
  { "organization_id", "string" },
  { "caller_number", "string" },
  { "callee_number", "string" },
  { "caller_name", "string" },
  { "caller_email", "string" },
  { "channel", "string" },
  { "status", "string" },
  { "summary", "string" },
  { "recording_url", "string" },
  { "duration_sec", "integer" },
  { "cost_total", "decimal" },
  { "twilio_cost", "number" },
  { "model_cost", "number" },
  { "credit_breakdown", "object", M.CREDIT_BREAKDOWN },
  { "disconnect_reason", "string" },
  { "call_latency_ms", "integer" },
  { "error_message", "string" },
  { "post_call_analysis_result", "object" },
  { "metadata", "object" },
  { "started_at", "time" },
  { "ended_at", "time" },
  { "created_at", "time" },
  { "transcripts", "array", M.TRANSCRIPT },
}

M.PAGE = record {
  { "success", "boolean" },
  { "message", "string" },
  { "phone", "string" },
  { "total_count", "integer" },
  { "page", "integer" },
  { "page_size", "integer" },
  { "calls", "array", M.CALL },
}

return M
