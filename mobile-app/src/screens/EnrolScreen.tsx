import { useState } from 'react';
import { Image, StyleSheet, Text, View } from 'react-native';

import type { PhotoFile, SkippedPhoto } from '../api/types';
import { Button } from '../components/Button';
import { Field } from '../components/Field';
import { pickPhotos } from '../components/pickPhotos';
import { ProblemPanel } from '../components/ProblemPanel';
import { Screen } from '../components/Screen';
import { useTheme } from '../components/theme';
import { UploadProgress } from '../components/UploadProgress';
import { useEnrol } from '../hooks/useEnrol';

const MAX_PHOTOS = 8;

/** The OpenAPI file types a skipped photo's `error` as any object, so its fields are checked here. */
function skipReason({ error }: SkippedPhoto): string {
  if (error?.code === 'no_face_found') return 'no face found';
  return typeof error?.message === 'string' ? error.message : 'not usable';
}

/** Enrol a missing person (with the enrol key of Settings): name, optional details, one or more photos. */
export function EnrolScreen() {
  const theme = useTheme();
  const [name, setName] = useState('');
  const [lastSeen, setLastSeen] = useState('');
  const [contact, setContact] = useState('');
  const [photos, setPhotos] = useState<PhotoFile[]>([]);
  const { state, enrol, cancel, reset } = useEnrol();

  async function add(source: 'camera' | 'library') {
    const outcome = await pickPhotos(source, source === 'library');
    if (outcome.kind === 'picked') {
      setPhotos((before) => [...before, ...outcome.photos].slice(0, MAX_PHOTOS));
    }
  }

  function submit() {
    const metadata: Record<string, string> = {};
    if (lastSeen.trim()) metadata.last_seen = lastSeen.trim();
    if (contact.trim()) metadata.contact = contact.trim();
    void enrol(name.trim(), metadata, photos);
  }

  function startOver() {
    reset();
    setName('');
    setLastSeen('');
    setContact('');
    setPhotos([]);
  }

  if (state.status === 'done') {
    const { enrolment } = state;
    return (
      <Screen title="Enrol">
        <Text accessibilityRole="alert" style={[styles.done, { color: theme.success }]}>
          Enrolled {enrolment.person.name} with {enrolment.faces_added}{' '}
          {enrolment.faces_added === 1 ? 'face' : 'faces'}.
        </Text>
        {enrolment.skipped.length > 0 ? (
          <View style={styles.field}>
            <Text style={{ color: theme.danger, fontWeight: '700' }}>
              {enrolment.skipped.length} {enrolment.skipped.length === 1 ? 'photo was' : 'photos were'} not used:
            </Text>
            {enrolment.skipped.map((skip) => (
              <Text key={skip.index} style={{ color: theme.text }}>
                • Photo {skip.index + 1} ({state.photos[skip.index]?.name ?? skip.filename ?? 'unnamed'}):{' '}
                {skipReason(skip)}
              </Text>
            ))}
          </View>
        ) : null}
        <Button title="Enrol another person" onPress={startOver} />
      </Screen>
    );
  }

  const uploading = state.status === 'uploading';
  return (
    <Screen title="Enrol">
      <Text style={{ color: theme.muted }}>Needs an enrol key (Settings). Add clear photos of the face.</Text>
      <Field label="Name (required)" value={name} onChangeText={setName} autoCorrect={false} />
      <Field label="Date last seen (optional)" placeholder="e.g. 2026-11-20" value={lastSeen} onChangeText={setLastSeen} />
      <Field label="Contact (optional)" placeholder="who to call" value={contact} onChangeText={setContact} />
      <View style={styles.row}>
        <Button title="Add photos" label="Add photos from the library" kind="secondary" disabled={uploading || photos.length >= MAX_PHOTOS} onPress={() => add('library')} />
        <Button title="Take photo" label="Take a photo with the camera" kind="secondary" disabled={uploading || photos.length >= MAX_PHOTOS} onPress={() => add('camera')} />
      </View>
      {photos.length > 0 ? (
        <View style={styles.row}>
          {photos.map((photo, index) => (
            <View key={`${photo.uri}-${index}`} style={styles.photoBox}>
              <Image source={{ uri: photo.uri }} style={styles.photo} accessibilityLabel={`Photo ${index + 1}`} />
              <Button
                title="Remove"
                kind="danger"
                label={`Remove photo ${index + 1}`}
                disabled={uploading}
                onPress={() => setPhotos((before) => before.filter((_, i) => i !== index))}
              />
            </View>
          ))}
        </View>
      ) : null}
      {uploading ? <UploadProgress progress={state.progress} onCancel={cancel} /> : null}
      {state.status === 'error' ? <ProblemPanel error={state.error} onRetry={submit} /> : null}
      {!uploading ? (
        <Button
          wide
          title="Enrol"
          label="Enrol this person"
          disabled={!name.trim() || photos.length === 0}
          onPress={submit}
        />
      ) : null}
    </Screen>
  );
}

const styles = StyleSheet.create({
  field: { gap: 6 },
  row: { flexDirection: 'row', gap: 10, flexWrap: 'wrap', alignItems: 'center' },
  photoBox: { gap: 6, alignItems: 'center' },
  photo: { width: 96, height: 96, borderRadius: 8 },
  done: { fontSize: 18, fontWeight: '700' },
});
