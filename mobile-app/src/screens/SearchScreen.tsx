import { useState } from 'react';
import { Image, StyleSheet, Text, View } from 'react-native';

import type { PhotoFile } from '../api/types';
import { Button } from '../components/Button';
import { pickPhotos } from '../components/pickPhotos';
import { ProblemPanel } from '../components/ProblemPanel';
import { Screen } from '../components/Screen';
import { useTheme } from '../components/theme';
import { UploadProgress } from '../components/UploadProgress';
import { useSearch } from '../hooks/useSearch';
import { ResultsView } from './ResultsView';

// a search key may ask for at most 5 people (GATEWAY_SEARCH_MAX_K): the gateway refuses more
const K_CHOICES = [3, 5];

/** Take or pick a photo, search, see the results. */
export function SearchScreen() {
  const theme = useTheme();
  const [photo, setPhoto] = useState<PhotoFile | null>(null);
  const [k, setK] = useState(5);
  const [notice, setNotice] = useState<string | null>(null);
  const { state, run, cancel, retry, reset } = useSearch();

  async function choose(source: 'camera' | 'library') {
    setNotice(null);
    const outcome = await pickPhotos(source);
    if (outcome.kind === 'denied') {
      setNotice(
        source === 'camera'
          ? 'Camera access is off. Allow it in the system settings, or choose a photo instead.'
          : 'Photo library access is off. Allow it in the system settings.',
      );
    } else if (outcome.kind === 'picked') {
      reset();
      setPhoto(outcome.photos[0]);
    }
  }

  const uploading = state.status === 'uploading';
  return (
    <Screen title="Search">
      <Text style={{ color: theme.muted }}>
        Photograph or choose a photo of a face. It is compared with the enrolled missing persons.
      </Text>
      <View style={styles.row}>
        <Button title="Take photo" label="Take a photo with the camera" disabled={uploading} onPress={() => choose('camera')} />
        <Button title="Choose photo" label="Choose a photo from the library" kind="secondary" disabled={uploading} onPress={() => choose('library')} />
      </View>
      {notice ? <Text style={{ color: theme.danger }}>{notice}</Text> : null}

      {photo && state.status !== 'done' ? (
        <View style={styles.preview}>
          <Image source={{ uri: photo.uri }} style={styles.photo} accessibilityLabel="The chosen photo" />
          <View style={styles.row}>
            <Text style={{ color: theme.text }}>Results:</Text>
            {K_CHOICES.map((choice) => (
              <Button
                key={choice}
                title={`Top ${choice}`}
                label={`Show the top ${choice} people`}
                kind="secondary"
                selected={k === choice}
                disabled={uploading}
                onPress={() => setK(choice)}
              />
            ))}
          </View>
          {!uploading ? <Button wide title="Search" label="Search for this face" onPress={() => void run(photo, k)} /> : null}
        </View>
      ) : null}

      {state.status === 'uploading' ? <UploadProgress progress={state.progress} onCancel={cancel} /> : null}
      {state.status === 'error' ? <ProblemPanel error={state.error} onRetry={retry} /> : null}
      {state.status === 'done' ? (
        <>
          <ResultsView result={state.result} />
          <Button
            title="New search"
            kind="secondary"
            onPress={() => {
              reset();
              setPhoto(null);
            }}
          />
        </>
      ) : null}
    </Screen>
  );
}

const styles = StyleSheet.create({
  row: { flexDirection: 'row', gap: 10, flexWrap: 'wrap', alignItems: 'center' },
  preview: { gap: 12 },
  photo: { width: 200, height: 200, borderRadius: 12, backgroundColor: '#8884' },
});
