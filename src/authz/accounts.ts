// Accounts oidc-provider asks about (findAccount). Until federation lands (issue 4) the only
// source is the development test login; the record lives as long as a session can.
import type { Store } from '../store/index.ts';

export interface AccountClaims {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  preferred_username?: string;
}

export interface AccountStore {
  save(claims: AccountClaims, ttlSeconds: number): Promise<void>;
  find(sub: string): Promise<AccountClaims | undefined>;
}

const accountKey = (sub: string) => `account:${sub}`;

export function createAccountStore(store: Store): AccountStore {
  return {
    async save(claims, ttlSeconds) {
      await store.set(accountKey(claims.sub), JSON.stringify(claims), { ttl: ttlSeconds });
    },
    async find(sub) {
      const stored = await store.get(accountKey(sub));
      return stored ? (JSON.parse(stored) as AccountClaims) : undefined;
    },
  };
}
