import { createContext, useCallback, useContext } from 'react';

import { ApiError, type GatewayApi } from '../api/client';

export const ClientContext = createContext<GatewayApi | null>(null);

/** The configured gateway client; calling it throws a not_configured ApiError when Settings are empty. */
export function useClient(): () => GatewayApi {
  const client = useContext(ClientContext);
  return useCallback(() => {
    if (!client) {
      throw new ApiError('not_configured', 'The gateway address is not set.');
    }
    return client;
  }, [client]);
}
