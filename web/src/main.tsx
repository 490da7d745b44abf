import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ConfigErrorPage } from "./app/config-error-page";
import { AppProviders } from "./app/providers";
import { AppShell } from "./app/shell";
import { parseConfig } from "./lib/config";
import { createQueryClient } from "./lib/query-client";
import { createSupabaseClient } from "./lib/supabase";
import "./styles.css";

const root = createRoot(document.getElementById("root")!);
const result = parseConfig(import.meta.env);

if (!result.ok) {
  root.render(<ConfigErrorPage problems={result.problems} />);
} else {
  const backend = { config: result.config, supabase: createSupabaseClient(result.config) };
  root.render(
    <StrictMode>
      <AppProviders backend={backend} queryClient={createQueryClient()}>
        <AppShell />
      </AppProviders>
    </StrictMode>,
  );
}
