/**
 * The admin API's JSON as the console reads it (the OpenAPI document is the contract;
 * these name only the fields the pages show). Fields of issue-14 operations are optional
 * so a deployment without them still renders.
 */
export interface ApiKey {
  id: string;
  product: string;
  account: string;
  label: string | null;
  prefix: string;
  last4: string;
  scopes: string[];
  plan: string | null;
  status: "active" | "revoked" | "expired";
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  revoked_by: string | null;
  revoke_reason?: string | null;
  revoke_ticket?: string | null;
  replaces?: string | null;
  last_used_at: string | null;
}

export interface KeyPage {
  keys: ApiKey[];
  next_cursor: string | null;
}

export interface UsageCall {
  time: string;
  method: string;
  path: string;
  status: number;
  request_id: string;
  client_address: string | null;
  country: string | null;
  asn: number | null;
  user_agent: string | null;
  outcome: string;
}

export interface UsageAddress {
  client_address: string | null;
  first_seen: string;
  last_seen: string;
  calls: number;
  admitted: number;
  countries: string[];
  asns: number[];
}

export interface UsagePage {
  calls: UsageCall[];
  next_cursor: string | null;
  addresses: UsageAddress[];
  addresses_complete: boolean;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  product: string | null;
  account: string | null;
  request_id: string;
  detail: Record<string, unknown> | null;
}

export interface AuditPage {
  entries: AuditEntry[];
  next_cursor: string | null;
}

export interface FoundCall extends UsageCall {
  key_id: string;
  product: string;
  account: string;
}

export interface KeySeen {
  key_id: string;
  product: string;
  account: string;
  label: string | null;
  prefix: string;
  last4: string;
  first_seen: string;
  last_seen: string;
  calls: number;
  admitted: number;
}

export interface CallSearchPage {
  since: string;
  until: string;
  calls: FoundCall[];
  next_cursor: string | null;
  keys: KeySeen[];
  keys_complete: boolean;
}
