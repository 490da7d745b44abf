import { QueryClient, QueryClientProvider, useQuery } from "@tanstack/react-query";
import { act, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { DatabaseError, ServiceUnreachableError, throwIfError } from "@/lib/errors";
import { ConnectionBanner } from "./connection-banner";
import { QueryView, Skeleton } from "./status";

/** A card reading a number the test controls: `state.down` makes the read fail as a dead network does. */
function Card({ name, state }: { name: string; state: { down: boolean; value: number } }) {
  const query = useQuery({
    queryKey: [name],
    queryFn: async () => {
      if (state.down) throw new ServiceUnreachableError("TypeError: Failed to fetch");
      return state.value;
    },
  });
  return (
    <section aria-label={name}>
      <QueryView query={query} loading={<Skeleton label={`Loading ${name}…`} />} errorTitle={`${name} could not be loaded.`}>
        {(value) => <p>{`${name} is ${value}`}</p>}
      </QueryView>
    </section>
  );
}

function renderCards(state: { down: boolean; value: number }) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <ConnectionBanner retryEveryMs={30} />
      <Card name="Balance" state={state} />
      <Card name="Usage" state={state} />
    </QueryClientProvider>,
  );
  return client;
}

describe("when the service cannot be reached", () => {
  it("keeps the last figures, marked as not current, under one banner, and recovers by itself", async () => {
    const state = { down: false, value: 500 };
    const client = renderCards(state);
    expect(await screen.findByText("Balance is 500")).toBeInTheDocument();
    expect(screen.queryByRole("alert")).toBeNull();

    state.down = true;
    await act(() => client.refetchQueries());
    const banners = await screen.findAllByRole("alert");
    expect(banners).toHaveLength(1);
    expect(banners[0]).toHaveTextContent("The billing service cannot be reached");
    expect(screen.getByText("Balance is 500")).toBeInTheDocument();
    expect(screen.getByText("Usage is 500")).toBeInTheDocument();
    expect(screen.getAllByText(/^Not current: last updated/)).toHaveLength(2);
    expect(screen.queryByText(/Failed to fetch/)).toBeNull();

    // Back up: the banner's own retry brings fresh figures without anyone pressing a button.
    state.down = false;
    state.value = 400;
    await waitFor(() => expect(screen.getByText("Balance is 400")).toBeInTheDocument());
    await waitFor(() => expect(screen.queryByRole("alert")).toBeNull());
    expect(screen.queryByText(/^Not current/)).toBeNull();
  });

  it("a card that never loaded waits under the banner instead of printing the network error", async () => {
    renderCards({ down: true, value: 1 });
    expect(await screen.findByRole("alert")).toHaveTextContent("cannot be reached");
    expect(screen.getAllByText(/^Loading (Balance|Usage)…$/)).toHaveLength(2);
    expect(screen.queryByText(/could not be loaded/)).toBeNull();
  });

  it("supabase-js's fetch failure is told apart from a database error", () => {
    expect(() => throwIfError({ code: "", message: "TypeError: Failed to fetch" })).toThrow(ServiceUnreachableError);
    expect(() => throwIfError({ code: "42501", message: "permission denied" })).toThrow(DatabaseError);
  });
});
