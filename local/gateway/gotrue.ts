/**
 * `/auth/v1`: the part of GoTrue (Supabase Auth) that supabase-js uses here: email + password
 * sign-up, the password and refresh-token grants (rotating refresh tokens with GoTrue's reuse
 * interval), the current user, and logout. Users, sessions and refresh tokens live in GoTrue's
 * own tables (`auth.users`, `auth.sessions`, `auth.refresh_tokens`); passwords are bcrypt
 * hashes made by pgcrypto; access tokens are HS256 JWTs with the claims Supabase issues.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import type pg from "pg";
import { databaseUnavailability, RETRY_AFTER_SECONDS } from "./database-pool.ts";
import { API_VERSION, AuthError, authErrorResponse, json } from "./gotrue-errors.ts";
import {
  checkMetadataSize,
  checkNewPassword,
  couldBeStoredPassword,
  metadataField,
  normaliseEmail,
  readJsonBody,
  signupEmail,
  stringField,
} from "./gotrue-input.ts";
import { bearerToken, secretBytes, verifyToken } from "./keys.ts";

export interface GotrueOptions {
  /** Pool with rights on the `auth` schema (GoTrue's supabase_auth_admin; the superuser locally). */
  pool: pg.Pool;
  jwtSecret: string;
  /** Public URL of the gateway, for the `iss` claim. */
  apiUrl: string;
  /** Access token lifetime in seconds (config.toml `auth.jwt_expiry`). */
  jwtExpiry?: number;
  /** Seconds a rotated refresh token may still be used (config.toml `auth.refresh_token_reuse_interval`). */
  refreshTokenReuseInterval?: number;
  enableSignup?: boolean;
}

interface UserRow {
  id: string;
  aud: string | null;
  role: string | null;
  email: string | null;
  phone: string | null;
  email_confirmed_at: Date | null;
  confirmed_at: Date | null;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Record<string, unknown> | null;
  raw_user_meta_data: Record<string, unknown> | null;
  created_at: Date | null;
  updated_at: Date | null;
  is_anonymous: boolean;
}

const USER_COLUMNS = `id, aud, role, email, phone, email_confirmed_at, confirmed_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous`;

/**
 * While the database cannot serve, GoTrue's error shape with a retriable status and
 * Retry-After (supabase-js treats 502/503/504 as retryable). GoTrue has no code of its own
 * for this; `unexpected_failure` is its code for "the server failed, not you".
 */
function unavailableError(error: unknown): AuthError | undefined {
  const reason = databaseUnavailability(error);
  if (!reason) return undefined;
  const headers = { "Retry-After": String(RETRY_AFTER_SECONDS) };
  if (reason === "timeout") return new AuthError(504, "request_timeout", "Timed out waiting for a database connection; retry shortly", {}, headers);
  return new AuthError(503, "unexpected_failure", "The database is unavailable; retry shortly", {}, headers);
}

function iso(date: Date | null): string | undefined {
  return date ? date.toISOString() : undefined;
}

/** The user object GoTrue returns. */
function userJson(user: UserRow): Record<string, unknown> {
  return {
    id: user.id,
    aud: user.aud ?? "authenticated",
    role: user.role ?? "authenticated",
    email: user.email ?? "",
    email_confirmed_at: iso(user.email_confirmed_at),
    phone: user.phone ?? "",
    confirmed_at: iso(user.confirmed_at),
    last_sign_in_at: iso(user.last_sign_in_at),
    app_metadata: user.raw_app_meta_data ?? {},
    user_metadata: user.raw_user_meta_data ?? {},
    identities: [],
    created_at: iso(user.created_at),
    updated_at: iso(user.updated_at),
    is_anonymous: user.is_anonymous,
  };
}

function newRefreshToken(): string {
  return randomBytes(16).toString("base64url");
}

/** bcrypt with GoTrue's cost (10), by pgcrypto; `parameter` is the password's placeholder. */
const HASH_PASSWORD_SQL = (parameter: string) => `extensions.crypt(${parameter}, extensions.gen_salt('bf', 10))`;

/**
 * Creates a confirmed email + password user (sign-up with confirmations off, as this
 * project's config.toml has it). Used by /signup and by `npm start` for the demo login.
 */
export async function createUser(
  client: pg.ClientBase,
  email: string,
  password: string,
  metadata: Record<string, unknown> = {},
): Promise<UserRow> {
  const id = randomUUID();
  const { rows } = await client.query<UserRow>(
    `insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                             raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous)
     values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2,
             ${HASH_PASSWORD_SQL("$3")}, now(),
             '{"provider": "email", "providers": ["email"]}', $4, now(), now(), false)
     returning ${USER_COLUMNS}`,
    [id, normaliseEmail(email), password, JSON.stringify({ ...metadata, sub: id, email: normaliseEmail(email), email_verified: true, phone_verified: false })],
  );
  return rows[0]!;
}

export function createGotrue(options: GotrueOptions) {
  const expiry = options.jwtExpiry ?? 3600;
  const reuseInterval = options.refreshTokenReuseInterval ?? 10;
  const issuer = `${options.apiUrl.replace(/\/$/, "")}/auth/v1`;

  async function withTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await options.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("begin");
      const result = await work(client);
      await client.query("commit");
      return result;
    } catch (error) {
      // A connection that cannot even roll back is dropped rather than returned to the pool.
      broken = await client.query("rollback").then(() => undefined, (rollbackError: Error) => rollbackError);
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async function accessToken(user: UserRow, sessionId: string, signedInAt: number): Promise<{ token: string; expiresAt: number }> {
    const now = Math.floor(Date.now() / 1000);
    const expiresAt = now + expiry;
    const token = await new SignJWT({
      iss: issuer,
      sub: user.id,
      aud: user.aud ?? "authenticated",
      email: user.email ?? "",
      phone: user.phone ?? "",
      app_metadata: user.raw_app_meta_data ?? {},
      user_metadata: user.raw_user_meta_data ?? {},
      role: user.role ?? "authenticated",
      aal: "aal1",
      amr: [{ method: "password", timestamp: signedInAt }],
      session_id: sessionId,
      is_anonymous: user.is_anonymous,
    })
      .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: "local" })
      .setIssuedAt(now)
      .setExpirationTime(expiresAt)
      .sign(secretBytes(options.jwtSecret));
    return { token, expiresAt };
  }

  async function sessionJson(user: UserRow, sessionId: string, refreshToken: string, signedInAt: number): Promise<Record<string, unknown>> {
    const { token, expiresAt } = await accessToken(user, sessionId, signedInAt);
    return {
      access_token: token,
      token_type: "bearer",
      expires_in: expiry,
      expires_at: expiresAt,
      refresh_token: refreshToken,
      user: userJson(user),
    };
  }

  /** Opens a new session for a user and returns it as GoTrue does. */
  async function openSession(client: pg.PoolClient, user: UserRow): Promise<Record<string, unknown>> {
    const sessionId = randomUUID();
    const refreshToken = newRefreshToken();
    await client.query(
      `insert into auth.sessions (id, user_id, created_at, updated_at, aal) values ($1, $2, now(), now(), 'aal1')`,
      [sessionId, user.id],
    );
    await client.query(
      `insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
       values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3)`,
      [refreshToken, user.id, sessionId],
    );
    const { rows } = await client.query<UserRow>(
      `update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1 returning ${USER_COLUMNS}`,
      [user.id],
    );
    return sessionJson(rows[0]!, sessionId, refreshToken, Math.floor(Date.now() / 1000));
  }

  async function signup(request: Request): Promise<Response> {
    if (options.enableSignup === false) throw new AuthError(422, "signup_disabled", "Signups not allowed for this instance");
    const body = await readJsonBody(request);
    const given = stringField(body, "email");
    const password = stringField(body, "password");
    if (given === "") {
      if (stringField(body, "phone")) throw new AuthError(400, "phone_provider_disabled", "Phone signups are disabled");
      throw new AuthError(422, "validation_failed", "To signup, please provide your email");
    }
    checkNewPassword(password);
    const email = signupEmail(given);
    const metadata = metadataField(body) ?? {};
    checkMetadataSize(metadata);
    return json(
      await withTransaction(async (client) => {
        const existing = await client.query("select 1 from auth.users where lower(email) = $1 and is_sso_user = false", [email]);
        if (existing.rowCount) throw new AuthError(422, "user_already_exists", "User already registered");
        try {
          const user = await createUser(client, email, password, metadata);
          return await openSession(client, user);
        } catch (error) {
          if (typeof error === "object" && error !== null && (error as { code?: string }).code === "23505") {
            throw new AuthError(422, "user_already_exists", "User already registered");
          }
          throw error;
        }
      }),
    );
  }

  async function passwordGrant(request: Request): Promise<Response> {
    const body = await readJsonBody(request);
    const email = normaliseEmail(stringField(body, "email"));
    const password = stringField(body, "password");
    if (email === "" && stringField(body, "phone") === "") {
      throw new AuthError(400, "validation_failed", "Only an email address or phone number should be provided on login.");
    }
    if (!couldBeStoredPassword(password)) throw new AuthError(400, "invalid_credentials", "Invalid login credentials");
    return json(
      await withTransaction(async (client) => {
        // Stored addresses are lower-cased by the same rule (normaliseEmail); lower() here
        // only covers rows written by other tools with ASCII capitals.
        const { rows } = await client.query<UserRow>(
          `select ${USER_COLUMNS} from auth.users
            where lower(email) = $1 and is_sso_user = false and deleted_at is null
              and encrypted_password is not null and encrypted_password <> ''
              and encrypted_password = extensions.crypt($2, encrypted_password)`,
          [email, password],
        );
        if (!rows[0]) throw new AuthError(400, "invalid_credentials", "Invalid login credentials");
        return openSession(client, rows[0]);
      }),
    );
  }

  async function refreshGrant(request: Request): Promise<Response> {
    const body = await readJsonBody(request);
    const presented = stringField(body, "refresh_token");
    if (presented === "") throw new AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
    return json(
      await withTransaction(async (client) => {
        const { rows } = await client.query<{ token: string; revoked: boolean; session_id: string; user_id: string; updated_at: Date; signed_in: Date }>(
          `select rt.token, rt.revoked, rt.session_id, rt.user_id, rt.updated_at, s.created_at as signed_in
             from auth.refresh_tokens rt join auth.sessions s on s.id = rt.session_id
            where rt.token = $1
            for update of rt, s`,
          [presented],
        );
        const current = rows[0];
        if (!current) throw new AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
        const userResult = await client.query<UserRow>(
          `select ${USER_COLUMNS} from auth.users where id = $1 and deleted_at is null`,
          [current.user_id],
        );
        const user = userResult.rows[0];
        if (!user) throw new AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
        const signedInAt = Math.floor(current.signed_in.getTime() / 1000);
        if (current.revoked) {
          // A token rotated moments ago (a concurrent refresh from another tab) gets the
          // session's live token back; an older one is a replay, and ends the session.
          const withinReuse = Date.now() - current.updated_at.getTime() <= reuseInterval * 1000;
          const live = await client.query<{ token: string }>(
            `select token from auth.refresh_tokens where session_id = $1 and not revoked order by id desc limit 1`,
            [current.session_id],
          );
          if (withinReuse && live.rows[0]) return sessionJson(user, current.session_id, live.rows[0].token, signedInAt);
          await client.query("update auth.refresh_tokens set revoked = true, updated_at = now() where session_id = $1", [current.session_id]);
          await client.query("delete from auth.sessions where id = $1", [current.session_id]);
          throw new AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used");
        }
        const next = newRefreshToken();
        await client.query("update auth.refresh_tokens set revoked = true, updated_at = now() where token = $1", [presented]);
        await client.query(
          `insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
           values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)`,
          [next, current.user_id, presented, current.session_id],
        );
        await client.query("update auth.sessions set refreshed_at = now(), updated_at = now() where id = $1", [current.session_id]);
        return sessionJson(user, current.session_id, next, signedInAt);
      }),
    );
  }

  /** The user and session a request's bearer token stands for, checked as GoTrue checks it. */
  async function authenticatedUser(request: Request): Promise<{ user: UserRow; sessionId: string | undefined }> {
    const token = bearerToken(request.headers.get("authorization") ?? undefined);
    if (!token) throw new AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token");
    const verified = await verifyToken(token, options.jwtSecret);
    if (!verified.ok) {
      throw new AuthError(403, "bad_jwt", `invalid JWT: unable to parse or verify signature, ${verified.message}`);
    }
    const sub = verified.claims.sub;
    if (typeof sub !== "string" || !/^[0-9a-f-]{36}$/i.test(sub)) {
      throw new AuthError(403, "bad_jwt", "invalid claim: missing sub claim");
    }
    const sessionId = typeof verified.claims.session_id === "string" ? verified.claims.session_id : undefined;
    const { rows } = await options.pool.query<UserRow>(`select ${USER_COLUMNS} from auth.users where id = $1 and deleted_at is null`, [sub]);
    if (!rows[0]) throw new AuthError(403, "user_not_found", "User from sub claim in JWT does not exist");
    if (sessionId) {
      const session = await options.pool.query("select 1 from auth.sessions where id = $1::uuid", [sessionId]).catch(() => ({ rowCount: 0 }));
      if (!session.rowCount) throw new AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist");
    }
    return { user: rows[0], sessionId };
  }

  /**
   * `PUT /user` (supabase-js `updateUser`): merges `data` into the user metadata as GoTrue
   * does (a null value removes the key) and changes the password. Changing the email or phone
   * needs GoTrue's confirmation mails, which the local stand-in does not send: refused.
   */
  async function updateUser(request: Request): Promise<Response> {
    const { user } = await authenticatedUser(request);
    const body = await readJsonBody(request);
    const email = stringField(body, "email");
    if (email !== "" && normaliseEmail(email) !== (user.email ?? "")) {
      throw new AuthError(400, "validation_failed", "Changing the email address is not supported by the local gateway");
    }
    if (stringField(body, "phone") !== "") {
      throw new AuthError(400, "validation_failed", "Changing the phone number is not supported by the local gateway");
    }
    const password = body.password === undefined || body.password === null ? undefined : stringField(body, "password");
    if (password !== undefined) checkNewPassword(password);
    const updates = metadataField(body);
    let metadata: Record<string, unknown> | undefined;
    if (updates) {
      metadata = { ...(user.raw_user_meta_data ?? {}) };
      for (const [key, value] of Object.entries(updates)) {
        if (value === null) delete metadata[key];
        else metadata[key] = value;
      }
      checkMetadataSize(metadata);
    }
    return json(
      userJson(
        await withTransaction(async (client) => {
          if (password !== undefined) {
            const same = await client.query(
              "select 1 from auth.users where id = $1 and encrypted_password = extensions.crypt($2, encrypted_password)",
              [user.id, password],
            );
            if (same.rowCount) throw new AuthError(422, "same_password", "New password should be different from the old password.");
          }
          const { rows } = await client.query<UserRow>(
            `update auth.users
                set encrypted_password = case when $2::text is null then encrypted_password else ${HASH_PASSWORD_SQL("$2")} end,
                    raw_user_meta_data = coalesce($3::jsonb, raw_user_meta_data),
                    updated_at = now()
              where id = $1
              returning ${USER_COLUMNS}`,
            [user.id, password ?? null, metadata === undefined ? null : JSON.stringify(metadata)],
          );
          if (!rows[0]) throw new AuthError(404, "user_not_found", "User not found");
          return rows[0];
        }),
      ),
    );
  }

  async function logout(request: Request, url: URL): Promise<Response> {
    const { user, sessionId } = await authenticatedUser(request);
    const scope = url.searchParams.get("scope") ?? "global";
    if (!["global", "local", "others"].includes(scope)) {
      throw new AuthError(400, "validation_failed", "Unsupported logout scope");
    }
    if (scope === "global") {
      await options.pool.query("delete from auth.sessions where user_id = $1", [user.id]);
    } else if (sessionId) {
      await options.pool.query(
        scope === "local" ? "delete from auth.sessions where id = $1" : "delete from auth.sessions where user_id = $2 and id <> $1",
        scope === "local" ? [sessionId] : [sessionId, user.id],
      );
    }
    return new Response(null, { status: 204, headers: { "X-Supabase-Api-Version": API_VERSION } });
  }

  /** Handles a request whose path (after `/auth/v1`) is `subPath`. */
  async function handle(request: Request, subPath: string): Promise<Response> {
    const url = new URL(request.url);
    const route = `${request.method} ${subPath.replace(/\/+$/, "") || "/"}`;
    try {
      switch (route) {
        case "POST /signup":
          return await signup(request);
        case "POST /token": {
          const grant = url.searchParams.get("grant_type");
          if (grant === "password") return await passwordGrant(request);
          if (grant === "refresh_token") return await refreshGrant(request);
          throw new AuthError(400, "validation_failed", `Unsupported grant_type by the local gateway: ${grant ?? "(none)"}`);
        }
        case "GET /user":
          return json(userJson((await authenticatedUser(request)).user));
        case "PUT /user":
          return await updateUser(request);
        case "POST /logout":
          return await logout(request, url);
        case "GET /health":
          return json({ version: "local", name: "GoTrue (local gateway)", description: "Email + password subset of GoTrue" });
        case "GET /settings":
          return json({
            external: { email: true, phone: false, anonymous_users: false },
            disable_signup: options.enableSignup === false,
            mailer_autoconfirm: true,
            phone_autoconfirm: false,
            sms_provider: "",
            saml_enabled: false,
          });
        default:
          throw new AuthError(404, "not_found", `Not supported by the local gateway: ${route}`);
      }
    } catch (error) {
      if (error instanceof AuthError) return authErrorResponse(request, error);
      const unavailable = unavailableError(error);
      if (unavailable) return authErrorResponse(request, unavailable);
      console.error("[gateway] auth error:", error);
      return authErrorResponse(request, new AuthError(500, "unexpected_failure", "Unexpected failure in the local auth server"));
    }
  }

  return { handle };
}
