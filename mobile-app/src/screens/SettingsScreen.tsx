import { useEffect, useState } from 'react';
import { StyleSheet, Text, View } from 'react-native';

import { createClient } from '../api/client';
import { describeError } from '../api/messages';
import { Button } from '../components/Button';
import { Field } from '../components/Field';
import { Screen } from '../components/Screen';
import { useTheme } from '../components/theme';
import type { StoredSettings } from '../storage/settings';

interface Props {
  settings: StoredSettings;
  onSave: (next: StoredSettings) => Promise<void>;
}

type Check = { state: 'idle' } | { state: 'checking' } | { state: 'done'; ok: boolean; text: string };

/** Gateway address, the search key and (for those who enrol) the enrol key, and a connection check. */
export function SettingsScreen({ settings, onSave }: Props) {
  const theme = useTheme();
  const [baseUrl, setBaseUrl] = useState(settings.baseUrl);
  const [apiKey, setApiKey] = useState(settings.apiKey);
  const [enrolKey, setEnrolKey] = useState(settings.enrolKey);
  const [saved, setSaved] = useState(false);
  const [check, setCheck] = useState<Check>({ state: 'idle' });

  useEffect(() => setSaved(false), [baseUrl, apiKey, enrolKey]);

  async function save() {
    await onSave({ baseUrl, apiKey, enrolKey });
    setSaved(true);
  }

  async function checkConnection() {
    if (!/^https?:\/\/[^/\s]+/.test(baseUrl.trim())) {
      setCheck({ state: 'done', ok: false, text: 'Enter the gateway address, starting with http:// or https://.' });
      return;
    }
    setCheck({ state: 'checking' });
    try {
      const client = createClient({ baseUrl, apiKey });
      const ready = await client.readyz();
      const keyNote = apiKey.trim() ? '' : ' No API key is set: searches will be refused.';
      setCheck({ state: 'done', ok: ready.ready, text: ready.detail + (ready.ready ? keyNote : '') });
    } catch (error) {
      const problem = describeError(error);
      setCheck({ state: 'done', ok: false, text: `${problem.title}. ${problem.detail}` });
    }
  }

  return (
    <Screen title="Settings">
      <Field
        label="Gateway address"
        value={baseUrl}
        onChangeText={setBaseUrl}
        placeholder="https://gateway.example.org"
        autoCapitalize="none"
        keyboardType="url"
      />
      <Field label="API key" value={apiKey} onChangeText={setApiKey} secureTextEntry autoCapitalize="none" />
      <Field
        label="Enrol key (optional)"
        value={enrolKey}
        onChangeText={setEnrolKey}
        placeholder="only to enrol people"
        secureTextEntry
        autoCapitalize="none"
      />
      <View style={styles.row}>
        <Button title="Save" label="Save settings" onPress={save} />
        <Button
          title="Check connection"
          kind="secondary"
          busy={check.state === 'checking'}
          onPress={checkConnection}
        />
      </View>
      {saved ? <Text accessibilityLiveRegion="polite" style={{ color: theme.success }}>Saved.</Text> : null}
      {check.state === 'done' ? (
        <Text
          accessibilityRole="alert"
          testID="connection-result"
          style={{ color: check.ok ? theme.success : theme.danger, fontSize: 16 }}
        >
          {check.ok ? '✓ ' : '✗ '}
          {check.text}
        </Text>
      ) : null}
    </Screen>
  );
}

const styles = StyleSheet.create({
  row: { flexDirection: 'row', gap: 10, flexWrap: 'wrap' },
});
