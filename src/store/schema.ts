/** Table types: the shape of every row the store reads and writes. Times are ms since the epoch. */

export interface UsersTable {
  id: string;
  name: string;
  role: 'admin' | 'user';
  password_hash: string;
  credits: number;
  created_at: number;
  updated_at: number;
}

export interface TokensTable {
  id: string; // the JWT's jti
  user_id: string;
  name: string;
  scopes: string; // JSON array
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

export interface SessionsTable {
  id_hash: string; // sha256 of the cookie value: a copy of the database yields no session
  user_id: string;
  csrf_token: string;
  created_at: number;
  expires_at: number;
}

export interface Database {
  users: UsersTable;
  tokens: TokensTable;
  sessions: SessionsTable;
}
