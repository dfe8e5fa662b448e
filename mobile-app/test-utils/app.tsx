// Screens render against a fake GatewayApi (every method a jest.fn) given through ClientContext.
import { render } from '@testing-library/react-native';
import type { ReactElement } from 'react';

import type { GatewayApi } from '../src/api/client';
import { ClientContext, EnrolClientContext } from '../src/hooks/ClientContext';

export type FakeClient = { [K in keyof GatewayApi]: jest.Mock };

export function fakeClient(): FakeClient {
  return {
    readyz: jest.fn(),
    match: jest.fn(),
    listSearches: jest.fn(),
    getSearch: jest.fn(),
    sendFeedback: jest.fn(),
    enrol: jest.fn(),
    resolve: jest.fn((link: string) => `http://gateway.test${link}`),
    imageHeaders: jest.fn(() => ({ 'X-API-Key': 'k' })),
    fetchImage: jest.fn(),
  };
}

/** `ui` with `client` as both the search and the enrol client. */
export function renderWith(client: FakeClient | null, ui: ReactElement) {
  const api = client as unknown as GatewayApi | null;
  return render(
    <ClientContext.Provider value={api}>
      <EnrolClientContext.Provider value={api}>{ui}</EnrolClientContext.Provider>
    </ClientContext.Provider>,
  );
}

/** A promise the test settles by hand, to look at the screen while a call is in flight. */
export function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
