import { useId, useState, type FormEvent } from "react";
import { signIn, signUp } from "@/lib/auth";
import { errorMessage } from "@/lib/errors";
import { useBackend } from "@/lib/supabase";

/** Sign in, or create an account, with email and password. */
export function AuthScreen() {
  const { supabase } = useBackend();
  const [mode, setMode] = useState<"sign-in" | "sign-up">("sign-in");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [pending, setPending] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const emailId = useId();
  const passwordId = useId();

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setProblem(null);
    setNotice(null);
    try {
      if (mode === "sign-in") await signIn(supabase, email, password);
      else if (!(await signUp(supabase, email, password))) setNotice("Check your email to confirm the account, then sign in.");
    } catch (error) {
      setProblem(errorMessage(error));
    } finally {
      setPending(false);
    }
  }

  const title = mode === "sign-in" ? "Sign in" : "Create an account";
  return (
    <main className="auth-screen">
      <h1>{title}</h1>
      <form onSubmit={submit} className="card stack" aria-label={title}>
        <label htmlFor={emailId}>Email</label>
        <input id={emailId} type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <label htmlFor={passwordId}>Password</label>
        <input
          id={passwordId}
          type="password"
          autoComplete={mode === "sign-in" ? "current-password" : "new-password"}
          required
          minLength={6}
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        {problem ? <p role="alert" className="field-error">{problem}</p> : null}
        {notice ? <p role="status">{notice}</p> : null}
        <button type="submit" className="button" disabled={pending}>
          {pending ? "Please wait…" : title}
        </button>
      </form>
      <p>
        {mode === "sign-in" ? "No account yet?" : "Already have an account?"}{" "}
        <button type="button" className="link-button" onClick={() => setMode(mode === "sign-in" ? "sign-up" : "sign-in")}>
          {mode === "sign-in" ? "Create one" : "Sign in instead"}
        </button>
      </p>
    </main>
  );
}
