import { createContext, useCallback, useContext } from 'react';

import { ApiError, type GatewayApi } from '../api/client';

export const ClientContext = createContext<GatewayApi | null>(null);
/** The client with the enrol key (only the Enrol screen uses it). */
export const EnrolClientContext = createContext<GatewayApi | null>(null);

function required(client: GatewayApi | null): () => GatewayApi {
  return () => {
    if (!client) {
      throw new ApiError('not_configured', 'The gateway address is not set.');
    }
    return client;
  };
}

/** The configured gateway client; calling it throws a not_configured ApiError when Settings are empty. */
export function useClient(): () => GatewayApi {
  const client = useContext(ClientContext);
  return useCallback(() => required(client)(), [client]);
}

/** The client that enrols: with the enrol key from Settings. */
export function useEnrolClient(): () => GatewayApi {
  const client = useContext(EnrolClientContext);
  return useCallback(() => required(client)(), [client]);
}
