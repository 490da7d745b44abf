import { useId, useState, type FormEvent } from "react";
import { errorMessage } from "@/lib/errors";
import type { Membership } from "@/types/billing";
import { useCreateOrganization } from "../api/create-organization";

/** Switches between the user's organizations and shows the role in the selected one. */
export function OrganizationSwitcher({
  memberships,
  selectedId,
  onSelect,
}: {
  memberships: Membership[];
  selectedId: string;
  onSelect: (organizationId: string) => void;
}) {
  const id = useId();
  const selected = memberships.find((m) => m.organization.id === selectedId);
  return (
    <div className="org-switcher">
      <label htmlFor={id}>Organization</label>
      {/* A long name is cut with an ellipsis to fit the bar; the title shows it whole on hover, and the option is its accessible name. */}
      <select id={id} value={selectedId} title={selected?.organization.name} onChange={(event) => onSelect(event.target.value)}>
        {memberships.map((m) => (
          <option key={m.organization.id} value={m.organization.id}>
            {m.organization.name}
          </option>
        ))}
      </select>
      {/* Plain text rather than an aria-label on a span, which screen readers may skip. */}
      {selected ? <span className="badge">Your role: {selected.role}</span> : null}
    </div>
  );
}

/** Form that creates an organization and hands its id back so it can be selected. */
export function CreateOrganizationForm({ onCreated }: { onCreated: (organizationId: string) => void }) {
  const [name, setName] = useState("");
  const mutation = useCreateOrganization();
  const inputId = useId();
  const errorId = useId();

  function submit(event: FormEvent) {
    event.preventDefault();
    mutation.mutate(name.trim(), {
      onSuccess: (organizationId) => {
        setName("");
        onCreated(organizationId);
      },
    });
  }

  return (
    <form className="inline-form" onSubmit={submit} aria-label="Create an organization">
      <label htmlFor={inputId}>New organization name</label>
      <input
        id={inputId}
        value={name}
        required
        maxLength={200}
        onChange={(event) => setName(event.target.value)}
        aria-describedby={mutation.isError ? errorId : undefined}
      />
      <button type="submit" className="button" disabled={mutation.isPending || name.trim() === ""}>
        {mutation.isPending ? "Creating…" : "Create organization"}
      </button>
      {mutation.isError ? (
        <p id={errorId} role="alert" className="field-error">
          {errorMessage(mutation.error)}
        </p>
      ) : null}
    </form>
  );
}
