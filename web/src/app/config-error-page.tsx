/** Shown instead of the app when VITE_* configuration is missing or wrong. */
export function ConfigErrorPage({ problems }: { problems: string[] }) {
  return (
    <main className="config-error">
      <h1>The dashboard is not configured</h1>
      <p>These settings are missing or invalid:</p>
      <ul>
        {problems.map((problem) => (
          <li key={problem}>
            <code>{problem}</code>
          </li>
        ))}
      </ul>
      <p>
        Set them in the environment (or let <code>npm start</code> write them to <code>.local/.env</code>), then
        restart the dev server or rebuild.
      </p>
    </main>
  );
}
