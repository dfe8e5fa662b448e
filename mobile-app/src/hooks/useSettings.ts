import { useCallback, useEffect, useMemo, useState } from 'react';

import { createClient, type GatewayApi } from '../api/client';
import { loadSettings, saveSettings, type StoredSettings } from '../storage/settings';

export interface SettingsState {
  settings: StoredSettings | null;
  /** with the search key */
  client: GatewayApi | null;
  /** with the enrol key (the search key when none is set, which the gateway refuses to enrol with) */
  enrolClient: GatewayApi | null;
  save: (next: StoredSettings) => Promise<void>;
}

/** Settings loaded once from storage, and the clients built from them (null until configured). */
export function useSettings(): SettingsState {
  const [settings, setSettings] = useState<StoredSettings | null>(null);

  useEffect(() => {
    let live = true;
    loadSettings().then((loaded) => live && setSettings(loaded));
    return () => {
      live = false;
    };
  }, []);

  const save = useCallback(async (next: StoredSettings) => {
    const clean = { baseUrl: next.baseUrl.trim(), apiKey: next.apiKey.trim(), enrolKey: next.enrolKey.trim() };
    await saveSettings(clean);
    setSettings(clean);
  }, []);

  const client = useMemo(
    () => (settings && settings.baseUrl ? createClient(settings) : null),
    [settings],
  );
  const enrolClient = useMemo(
    () =>
      settings && settings.baseUrl
        ? createClient({ baseUrl: settings.baseUrl, apiKey: settings.enrolKey || settings.apiKey })
        : null,
    [settings],
  );

  return { settings, client, enrolClient, save };
}
